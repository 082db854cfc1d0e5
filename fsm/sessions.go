package fsm

import (
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
)

// Idempotency records (feature level 3).
//
// Below level 3 a client session keeps each result whole: a subscribe's
// list view, a join's transcript, an agent's status, in the replicated
// state and every snapshot, for as long as the session keeps the seq
// (128 subscribes from one client id to a busy list grew a snapshot from
// 0.8 to 54 MiB). From level 3 it keeps a record of at most
// api.MaxRecordBytes encoded (record): the result itself when it is small
// by construction, else an api.Applied that says where the write applied.

// MaxRecordBytes bounds one record, msgpack-encoded.
const MaxRecordBytes = api.MaxRecordBytes

// maxRecordIDBytes bounds the ids an api.Applied names together, so that
// the record stays within MaxRecordBytes whatever the ids (its fixed part
// and the ids' keys take under 70 bytes). Ids are at most api.MaxIDBytes
// and a record names one, or a request and an offer with short generated
// ids, so this never drops one in practice.
const maxRecordIDBytes = 160

// record is what a client session keeps of res from level 3 on, at most
// MaxRecordBytes encoded. The choice depends on the result's type alone
// (and ids' lengths, which apply bounds), so every replica keeps the
// same:
//   - a rejection: its code, the message cut to api.MaxRecordErrBytes;
//   - no result, {id}, customer_message's and request_agent's results,
//     request_chat's {pending: true}, the nodes' and levels' results:
//     the result itself;
//   - a view (subscribe's list, join's and accept_offer's conversation,
//     an agent's status, an offer) or anything else: an api.Applied
//     with the entry's index and the ids the write was about.
func (s *State) record(res Result) Result {
	if res.Err != nil {
		return Result{Err: shortError(res.Err)}
	}
	a := api.Applied{Retry: true, Index: s.Index}
	switch d := res.Data.(type) {
	case nil:
		return res
	case api.Created:
		if len(d.ID) <= api.MaxIDBytes {
			return res
		}
	case api.CustomerMessageResult:
		if len(d.Request)+len(d.State) <= api.MaxIDBytes {
			return res
		}
	case api.RequestAgentResult:
		if len(d.Request)+len(d.State) <= api.MaxIDBytes {
			return res
		}
	case RegisterNodeResult, api.FeatureLevelArgs:
		return res
	case api.RequestChatResult:
		if d.Offer == nil {
			return res
		}
		a.Request, a.Offer = d.Offer.Request.ID, d.Offer.ID
	case api.ListSnapshot:
		a.List = d.List
	case api.JoinResult:
		a.Request = d.Request.ID
	case api.AgentStatus:
		a.Agent = d.Agent
	case api.OfferInfo:
		a.Request, a.Offer = d.Request.ID, d.ID
	}
	if len(a.List)+len(a.Agent)+len(a.Request)+len(a.Offer) > maxRecordIDBytes {
		a.List, a.Agent, a.Request, a.Offer = "", "", "", ""
	}
	return Result{Data: a}
}

// shortError returns e, or a copy with its message cut to
// api.MaxRecordErrBytes (at a character boundary) and marked with "…".
func shortError(e *api.Error) *api.Error {
	if len(e.Msg) <= api.MaxRecordErrBytes {
		return e
	}
	i := api.MaxRecordErrBytes - len("…")
	for i > 0 && !utf8.RuneStart(e.Msg[i]) {
		i--
	}
	return &api.Error{Code: e.Code, Msg: e.Msg[:i] + "…"}
}
