package api

import (
	"errors"
	"fmt"
	"slices"
)

// Code is a machine-readable error code. The same numbers are sent on the
// wire (docs/PROTOCOL.md lists them); clients compare codes, never messages.
type Code uint16

// Error codes. Domain codes (1-19) come from State.Apply; the others from the
// cluster and transport layers. Numbers are part of the wire protocol: never
// renumber, only add.
const (
	CodeOK                 Code = 0
	CodeBadRequest         Code = 1  // arguments missing or invalid
	CodeUnknownOp          Code = 2  // no such operation
	CodeUnauthenticated    Code = 3  // no valid hello yet, or bad credentials
	CodeForbidden          Code = 4  // the caller's role may not do this
	CodeNotFound           Code = 5  // an id names nothing
	CodeAlreadyExists      Code = 6  // create of an existing id, duplicate subscription
	CodeWrongState         Code = 7  // the entity's state forbids the operation
	CodeNotParticipant     Code = 8  // the agent is not in the conversation
	CodeNotSubscribed      Code = 9  // the agent is not subscribed to the list
	CodeAlreadyParticipant Code = 10 // the agent is already in the conversation
	CodeStaleSequence      Code = 11 // idempotency sequence too old to answer
	CodeOverCapacity       Code = 12 // the agent is at its maximum for the MRD
	CodeClosed             Code = 13 // the request is closed
	CodeFeatureNotEnabled  Code = 14 // the op or an argument needs a feature level the cluster has not reached

	CodeNotLeader   Code = 20 // this node cannot commit; see leader hint
	CodeNoLeader    Code = 21 // no leader right now; retry after the hint
	CodeUnavailable Code = 22 // this node cannot serve (shutting down, not ready, removed); retry on another
	CodeTimeout     Code = 23 // the outcome is unknown; retry with the same sequence
	CodeRateLimited Code = 24 // over a rate limit; not applied, retry after the hint

	CodeFrameTooLarge  Code = 30 // length prefix above the limit
	CodeMalformedFrame Code = 31 // not decodable msgpack / wrong shape
	CodeProtocol       Code = 32 // frame not allowed now (e.g. second hello)
	CodeSlowConsumer   Code = 33 // outbound buffer overflowed; resume by cursor
	CodeHelloTimeout   Code = 34 // no hello within the deadline

	CodeInternal Code = 50 // a bug; the command may or may not have applied
)

var codeNames = map[Code]string{
	CodeOK:                 "ok",
	CodeBadRequest:         "bad_request",
	CodeUnknownOp:          "unknown_op",
	CodeUnauthenticated:    "unauthenticated",
	CodeForbidden:          "forbidden",
	CodeNotFound:           "not_found",
	CodeAlreadyExists:      "already_exists",
	CodeWrongState:         "wrong_state",
	CodeNotParticipant:     "not_participant",
	CodeNotSubscribed:      "not_subscribed",
	CodeAlreadyParticipant: "already_participant",
	CodeStaleSequence:      "stale_sequence",
	CodeOverCapacity:       "over_capacity",
	CodeClosed:             "closed",
	CodeFeatureNotEnabled:  "feature_not_enabled",
	CodeNotLeader:          "not_leader",
	CodeNoLeader:           "no_leader",
	CodeUnavailable:        "unavailable",
	CodeTimeout:            "timeout",
	CodeRateLimited:        "rate_limited",
	CodeFrameTooLarge:      "frame_too_large",
	CodeMalformedFrame:     "malformed_frame",
	CodeProtocol:           "protocol",
	CodeSlowConsumer:       "slow_consumer",
	CodeHelloTimeout:       "hello_timeout",
	CodeInternal:           "internal",
}

// String returns the code's stable snake_case name.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code_%d", uint16(c))
}

// Codes returns every defined code, for documentation and tests.
func Codes() []Code {
	out := make([]Code, 0, len(codeNames))
	for c := range codeNames {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Error is a typed failure: a Code plus a human-readable message. It is
// returned as a value (in Result) and never changes state.
type Error struct {
	Code Code   `msgpack:"code"`
	Msg  string `msgpack:"msg"`
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Msg }

// Is makes errors.Is match any *Error with the same code, so callers can write
// errors.Is(err, &api.Error{Code: api.CodeNotFound}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf builds an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code carried by err, CodeOK for nil (including a nil
// *Error, such as Result.Err of a success), and CodeInternal for any error
// that is not an *Error.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		if e == nil {
			return CodeOK
		}
		return e.Code
	}
	return CodeInternal
}
