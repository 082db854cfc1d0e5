package transport

import (
	"context"
	"fmt"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// From feature level 3 the cluster keeps a small record of each write, not
// its whole result: a retried write whose result was a view of the state
// (a subscribe's list, a join's conversation, an agent's status, an
// offer) is answered with an api.Applied record (docs/PROTOCOL.md §6). A
// retry happens when the client re-sends a write after a lost connection
// or a timeout, and when a node re-sends it to a new leader. The typed
// helpers of those ops answer such a retry with the view read from the
// node after it, so that their callers get the same shape either way;
// Call returns the record as it came.

// clientView calls write op, whose result is a view of the state, and
// decodes the result as R; a retry answered with the applied record gets
// reread's answer instead, a read of the state made after the write.
func clientView[R any](ctx context.Context, c *Client, op string, args any, reread func(context.Context, api.Applied) (R, error)) (R, error) {
	var (
		raw msgpack.RawMessage
		r   R
	)
	if err := c.Call(ctx, op, args, &raw); err != nil {
		return r, err
	}
	if rec, ok := appliedRecord(raw); ok {
		v, err := reread(ctx, rec)
		if err != nil {
			return v, fmt.Errorf("transport: %s applied at index %d; reading its view: %w", op, rec.Index, err)
		}
		return v, nil
	}
	if len(raw) > 0 {
		if err := msgpack.Unmarshal(raw, &r); err != nil {
			return r, fmt.Errorf("transport: %s: decoding result: %w", op, err)
		}
	}
	return r, nil
}

// appliedRecord reports whether a write's result data is the cluster's
// applied record (its "retry" key is true: no result has that key).
func appliedRecord(raw msgpack.RawMessage) (api.Applied, bool) {
	var rec api.Applied
	if len(raw) == 0 || msgpack.Unmarshal(raw, &rec) != nil || !rec.Retry {
		return api.Applied{}, false
	}
	return rec, true
}

// rereadList reads a subscribe's list.
func (c *Client) rereadList(ctx context.Context, rec api.Applied) (api.ListSnapshot, error) {
	return c.List(ctx, rec.List)
}

// rereadConversation reads a join's or accept_offer's conversation.
func (c *Client) rereadConversation(ctx context.Context, rec api.Applied) (api.JoinResult, error) {
	v, err := c.Request(ctx, rec.Request)
	return api.JoinResult{Request: v.Request, Transcript: v.Transcript}, err
}

// rereadStatus reads the status of the agent an agent status op named.
func (c *Client) rereadStatus(ctx context.Context, rec api.Applied) (api.AgentStatus, error) {
	all, err := c.AgentStates(ctx)
	if err != nil {
		return api.AgentStatus{}, err
	}
	for _, st := range all {
		if st.Agent == rec.Agent {
			return st, nil
		}
	}
	return api.AgentStatus{}, api.Errorf(api.CodeNotFound, "agent %q not found", rec.Agent)
}

// rereadRequestChat reads the offer a request_chat got from the caller's
// view; one no longer pending (accepted, withdrawn) comes back with its id
// and its request's only. A record without an offer is a pending chat.
func (c *Client) rereadRequestChat(ctx context.Context, rec api.Applied) (api.RequestChatResult, error) {
	if rec.Offer == "" {
		return api.RequestChatResult{Pending: true}, nil
	}
	v, err := c.View(ctx)
	if err != nil {
		return api.RequestChatResult{}, err
	}
	if v.Push != nil {
		for i := range v.Push.Offers {
			if o := v.Push.Offers[i]; o.ID == rec.Offer {
				return api.RequestChatResult{Offer: &o}, nil
			}
		}
	}
	o := recordOffer(rec)
	return api.RequestChatResult{Offer: &o}, nil
}

// rereadOffer is a transfer's or invite's offer as the record names it:
// its id and its request's (the offer goes to another agent, whose view
// the caller cannot read).
func (c *Client) rereadOffer(_ context.Context, rec api.Applied) (api.OfferInfo, error) {
	return recordOffer(rec), nil
}

func recordOffer(rec api.Applied) api.OfferInfo {
	return api.OfferInfo{ID: rec.Offer, Request: api.RequestSummary{ID: rec.Request}}
}
