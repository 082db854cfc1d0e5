package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// agentPushHelp lists the push-routing commands of the agent console.
const agentPushHelp = `push routing:
  login | logout
  ready MRD | notready MRD [REASON]
  mode auto|pull    auto: offered the next chat by itself; pull: only on request-chat
  request-chat      (pull mode) ask for the next request of your queues
  accept REQUEST | reject REQUEST                 answer an offer
  transfer REQUEST AGENT | invite REQUEST AGENT   hand over, or conference in
  transfer-queue REQUEST QUEUE                    put the conversation back in a queue
  status            your routing state and pending offers
  queue QUEUE       a queue you are a member of`

// agentPushCommand runs one push-routing console command; handled is false
// if f is not one.
func agentPushCommand(ctx context.Context, c *transport.Client, say func(string, ...any), f []string) (handled bool, err error) {
	need := func(n int) error {
		if len(f) < n {
			return fmt.Errorf("%s needs %d argument(s); type 'help'", f[0], n-1)
		}
		return nil
	}
	status := func(st api.AgentStatus, err error) error {
		if err == nil {
			say("%s", describeStatus(st))
		}
		return err
	}
	switch f[0] {
	case "login":
		return true, status(c.Login(ctx, ""))
	case "logout":
		return true, status(c.Logout(ctx, ""))
	case "ready", "notready":
		if err := need(2); err != nil {
			return true, err
		}
		a := api.SetAgentStateArgs{MRD: f[1], State: api.AgentReady}
		if f[0] == "notready" {
			a.State, a.Reason = api.AgentNotReady, strings.Join(f[2:], " ")
		}
		return true, status(c.SetAgentState(ctx, a))
	case "mode":
		if err := need(2); err != nil {
			return true, err
		}
		return true, status(c.SetAgentMode(ctx, "", api.AgentMode(f[1])))
	case "request-chat":
		r, err := c.RequestChat(ctx, "")
		switch {
		case err != nil:
		case r.Offer != nil:
			say("offered %s", describeOffer(*r.Offer))
		default:
			say("nothing waiting: the next request that arrives is offered to you")
		}
		return true, err
	case "accept":
		if err := need(2); err != nil {
			return true, err
		}
		jr, err := c.AcceptOffer(ctx, api.OfferArgs{Request: f[1]})
		if err == nil {
			say("joined %s", describeSummary(jr.Request))
			for _, m := range jr.Transcript {
				say("  %s", formatMessage(m))
			}
		}
		return true, err
	case "reject":
		if err := need(2); err != nil {
			return true, err
		}
		return true, c.RejectOffer(ctx, api.OfferArgs{Request: f[1]})
	case "transfer", "invite":
		if err := need(3); err != nil {
			return true, err
		}
		a := api.TransferArgs{Request: f[1], ToAgent: f[2]}
		var o api.OfferInfo
		if f[0] == "transfer" {
			o, err = c.Transfer(ctx, a)
		} else {
			o, err = c.Invite(ctx, a)
		}
		if err == nil {
			say("%s %s offered to %s (offer %s)", f[0], o.Request.ID, o.Agent, o.ID)
		}
		return true, err
	case "transfer-queue":
		if err := need(3); err != nil {
			return true, err
		}
		return true, c.TransferToQueue(ctx, api.TransferToQueueArgs{Request: f[1], Queue: f[2]})
	case "status":
		var v api.StreamView
		if err := c.Call(ctx, api.QueryView, nil, &v); err != nil {
			return true, err
		}
		if v.Push == nil {
			say("never logged in, in no queue")
			return true, nil
		}
		say("%s", describePushView(*v.Push))
		return true, nil
	case "queue":
		if err := need(2); err != nil {
			return true, err
		}
		q, err := c.Queue(ctx, f[1])
		if err == nil {
			say("%s", describeQueue(q))
		}
		return true, err
	}
	return false, nil
}

// describePushEvent renders a push-routing event; ok is false for other
// kinds.
func describePushEvent(ev transport.Event, head string) (s string, ok bool) {
	switch ev.Kind {
	case api.EvOfferCreated:
		var o api.OfferInfo
		if ev.Decode(&o) == nil {
			return fmt.Sprintf("%s %s — answer 'accept %s' or 'reject %s'", head, describeOffer(o), o.Request.ID, o.Request.ID), true
		}
	case api.EvOfferWithdrawn:
		var w api.OfferWithdrawn
		if ev.Decode(&w) == nil {
			return fmt.Sprintf("%s %s of %s to %s: %s", head, w.Offer.ID, w.Offer.Request.ID, w.Offer.Agent, w.Reason), true
		}
	case api.EvAgentState:
		var a api.AgentStateChange
		if ev.Decode(&a) == nil {
			return head + " " + describeStateChange(a), true
		}
	case api.EvAgentMode:
		var m api.AgentModeChange
		if ev.Decode(&m) == nil {
			return fmt.Sprintf("%s %s is in %s mode", head, m.Agent, m.Mode), true
		}
	case api.EvRequestQueued:
		var q api.RequestQueued
		if ev.Decode(&q) == nil {
			return fmt.Sprintf("%s %s waits in queue %s (%s, priority %d)", head, q.Request.ID, q.Queue, q.Reason, q.Priority), true
		}
	}
	return "", false
}

// describeOffer renders an offer: what, from where, until when.
func describeOffer(o api.OfferInfo) string {
	var how string
	switch o.Kind {
	case api.OfferTransfer:
		how = "transfer from " + dash(o.From)
	case api.OfferInvite:
		how = "invitation from " + dash(o.From)
	default:
		how = "from queue " + o.Queue
	}
	left := time.Until(time.Unix(0, o.ExpiresAt)).Round(time.Second)
	return fmt.Sprintf("%s %s, %s, %s left", o.ID, describeSummary(o.Request), how, max(left, 0))
}

func describeStateChange(a api.AgentStateChange) string {
	in := "in every MRD"
	if a.MRD != "" {
		in = "in " + a.MRD
	}
	s := fmt.Sprintf("%s is %s %s", a.Agent, a.State, in)
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	return s
}

func describeStatus(st api.AgentStatus) string {
	var b strings.Builder
	login := "logged out"
	if st.LoggedIn {
		login = "logged in"
	}
	fmt.Fprintf(&b, "%s: %s, %s mode", st.Agent, login, st.Mode)
	if st.ChatRequested {
		b.WriteString(", chat requested")
	}
	fmt.Fprintf(&b, ", queues %s", dash(strings.Join(st.Queues, ",")))
	for _, m := range st.MRDs {
		fmt.Fprintf(&b, "\n    %s: %s", m.MRD, m.State)
		if m.Reason != "" {
			fmt.Fprintf(&b, " (%s)", m.Reason)
		}
		fmt.Fprintf(&b, ", %d chat(s) + %d offer(s)", m.Conversations, m.Offers)
		if m.Max > 0 {
			fmt.Fprintf(&b, " of max %d", m.Max)
		}
	}
	return b.String()
}

func describePushView(v api.AgentPushView) string {
	s := describeStatus(v.Status)
	for _, o := range v.Offers {
		s += "\n    offered " + describeOffer(o)
	}
	return s
}

func describeQueue(q api.QueueView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "queue %s: mrd %s, priority %d, %d waiting, %d offered", q.ID, q.MRD, q.Priority, len(q.Waiting), len(q.Offers))
	for _, w := range q.Waiting {
		fmt.Fprintf(&b, "\n    waiting %s (priority %d)", describeSummary(w.Request), w.Priority)
	}
	for _, o := range q.Offers {
		fmt.Fprintf(&b, "\n    offered to %s: %s", o.Agent, describeOffer(o))
	}
	return b.String()
}
