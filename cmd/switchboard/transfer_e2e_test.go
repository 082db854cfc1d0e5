package main

import (
	"errors"
	"testing"
	"time"

	"github.com/switchboard/switchboard/api"
)

// TestPushInviteTransferAndRequeueEndToEnd follows one push conversation
// through a real node as agents hand it on: alice invites bob into it
// (conference), bob transfers it to carol and leaves, carol puts it back
// in its queue, where bob picks it up again. Every agent hears exactly what its
// part in the conversation entitles it to, and the customer's messages
// reach exactly the participants of the moment.
func TestPushInviteTransferAndRequeueEndToEnd(t *testing.T) {
	w := newPushWorld(t, pushNode(t, -1), []pushQueue{{id: "Q", timeout: time.Hour}}, "alice", "bob", "carol")
	for _, id := range []string{"alice", "bob", "carol"} {
		w.ready(id)
	}
	r1 := w.arrive("Q", "cust1")
	w.expect("alice", "offer.created "+r1+" route")
	w.accept("alice", r1)
	w.expect("alice", "conversation.joined "+r1+" alice ACTIVE")

	// Invite: bob is offered an invitation and joins beside alice.
	inv, err := w.agents["alice"].Invite(pushCtx(t), api.TransferArgs{Request: r1, ToAgent: "bob"})
	pushDo(t, err)
	if inv.Kind != api.OfferInvite || inv.Agent != "bob" || inv.From != "alice" {
		t.Fatalf("invite: %+v", inv)
	}
	w.expect("bob", "offer.created "+r1+" invite")
	w.accept("bob", r1)
	w.expect("bob", "conversation.joined "+r1+" bob ACTIVE")
	w.expect("alice", "conversation.joined "+r1+" bob ACTIVE")
	call(t, w.admin, "customer_message", api.CustomerMessageArgs{Channel: "WQ", CustomerID: "cust1", Text: "to both"}, nil)
	w.expect("alice", "conversation.message "+r1+" to both")
	w.expect("bob", "conversation.message "+r1+" to both")
	w.quiet("carol")

	// Transfer: bob leaves at once, carol is offered it and accepts.
	tr, err := w.agents["bob"].Transfer(pushCtx(t), api.TransferArgs{Request: r1, ToAgent: "carol"})
	pushDo(t, err)
	if tr.Kind != api.OfferTransfer || tr.Agent != "carol" || tr.From != "bob" {
		t.Fatalf("transfer: %+v", tr)
	}
	w.expect("bob", "conversation.left "+r1+" bob ACTIVE")
	w.expect("alice", "conversation.left "+r1+" bob ACTIVE")
	w.expect("carol", "offer.created "+r1+" transfer")
	w.accept("carol", r1)
	w.expect("carol", "conversation.joined "+r1+" carol ACTIVE")
	w.expect("alice", "conversation.joined "+r1+" carol ACTIVE")
	call(t, w.admin, "customer_message", api.CustomerMessageArgs{Channel: "WQ", CustomerID: "cust1", Text: "after the transfer"}, nil)
	w.expect("alice", "conversation.message "+r1+" after the transfer")
	w.expect("carol", "conversation.message "+r1+" after the transfer")
	w.quiet("bob")

	// A transfer to an unknown agent changes nothing.
	if _, err := w.agents["carol"].Transfer(pushCtx(t), api.TransferArgs{Request: r1, ToAgent: "nobody"}); !errors.Is(err, &api.Error{Code: api.CodeNotFound}) {
		t.Fatalf("transfer to an unknown agent: %v, want not_found", err)
	}
	// Back to the queue as a new arrival: carol leaves (and would be asked
	// only as a last resort), alice stays, and the request is offered to
	// the READY member with the least load who is not in it: bob, whose
	// earlier transfer no longer counts against him.
	pushDo(t, w.agents["carol"].TransferToQueue(pushCtx(t), api.TransferToQueueArgs{Request: r1, Queue: "Q"}))
	w.expect("carol", "conversation.left "+r1+" carol ACTIVE")
	w.expect("alice", "conversation.left "+r1+" carol ACTIVE", "request.queued")
	w.expect("bob", "offer.created "+r1+" route")
	if waiting, offers := w.queue("Q"); waiting != "" || offers != r1+">bob" {
		t.Fatalf("after transfer_to_queue: waiting %q offers %q, want %s>bob", waiting, offers, r1)
	}
	w.accept("bob", r1)
	w.expect("bob", "conversation.joined "+r1+" bob ACTIVE")
	w.expect("alice", "conversation.joined "+r1+" bob ACTIVE")
	for _, id := range []string{"alice", "bob", "carol"} {
		w.quiet(id)
	}
}
