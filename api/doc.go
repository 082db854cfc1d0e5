// Package api holds what crosses Switchboard's client wire: error codes
// and the typed Error, roles and principals, request and agent states, the
// argument and result types of every operation, query names, event kinds
// and event payloads, and the limits a client must respect. It is a leaf:
// it imports only the standard library, so a Go client needs nothing else
// of Switchboard's (docs/PROTOCOL.md is the same contract for other
// languages).
//
// The domain (package fsm) applies commands whose arguments are these
// types and emits events whose payloads are these types; the transport
// encodes them as msgpack maps using the field tags declared here.
package api
