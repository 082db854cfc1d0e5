// Package transport is Switchboard's client wire protocol: length-prefixed
// msgpack frames over TCP, the server that runs one session per connection in
// front of a Backend (the cluster node), and the Go client library.
//
// # Framing
//
// Every frame is a 4-byte big-endian payload length followed by a msgpack map
// (see Frame). The length is checked against the limit before anything is
// allocated; a frame above it ends the connection with CodeFrameTooLarge, an
// undecodable one with CodeMalformedFrame.
//
// # Sessions
//
// The first frame must be a hello (version, role, user, token, client id and
// an optional resume cursor) within ServerConfig.HelloTimeout. The server
// answers welcome, and for agents and connectors attaches the principal's
// event stream. A req names an op: write ops (api.IsWrite) go through
// Backend.Submit, anything else through Backend.Query; each is answered by a
// res with the same id. Requests run concurrently, up to
// ServerConfig.MaxInFlight per session; beyond that the session stops reading
// its socket, which pushes back on the client.
//
// Responses and events share one bounded outbound queue per session, so a
// client sees them in the order they were queued. A session whose queue
// overflows is cut off, not waited for: it receives a bye with
// CodeSlowConsumer (if its socket still takes it) and is closed, and it
// resumes on reconnect from its last event sequence number. One slow client
// never stalls the fan-out or any other client.
//
// Every fatal condition is reported in a final bye frame carrying an error
// code, just before the server closes the connection.
package transport
