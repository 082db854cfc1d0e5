package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/vmihailenco/msgpack/v5"
)

// pacer spaces one worker's commands at rate per second; due returns when
// the i'th command is due (now, without a rate).
type pacer struct {
	start    time.Time
	interval time.Duration
}

func newPacer(rate float64, workers int) pacer {
	p := pacer{start: time.Now()}
	if rate > 0 {
		p.interval = time.Duration(float64(workers) / rate * float64(time.Second))
	}
	return p
}

// wait sleeps until command i is due and returns its due time: latency is
// measured from then, so a node that falls behind is charged for the
// commands it delayed (no coordinated omission).
func (p pacer) wait(ctx context.Context, i int) time.Time {
	if p.interval == 0 {
		return time.Now()
	}
	due := p.start.Add(time.Duration(i) * p.interval)
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	return due
}

// runRaw offers no-op commands carrying Pad bytes from every connector.
func (r *caseRun) runRaw() {
	pad := make([]byte, r.cfg.Pad)
	for i := range pad {
		pad[i] = byte('a' + i%26)
	}
	var wg sync.WaitGroup
	for w, c := range r.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := newPacer(r.cfg.Rate, len(r.conns))
			for i := 0; r.load.Err() == nil; i++ {
				start := p.wait(r.load, i)
				if r.load.Err() != nil {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				_, err := c.call(ctx, "noop", api.NoopArgs{Pad: pad}, nil)
				cancel()
				r.answered("noop", w, start, time.Now(), err)
			}
		}()
	}
	wg.Wait()
}

// runCustomers opens requests from every connector: each customer message
// from a new customer opens a request on the connector's channel's list.
// In mixed, every other message is a follow-up from a recent customer of
// the same connector (into its open conversation, or a new request if it
// was closed). A worker stops when the load stops or, if limit > 0, once
// limit requests are open in all.
func (r *caseRun) runCustomers(limit int64) {
	mixed := r.k.Scenario == ScenarioMixed && r.cfg.Messages > 0
	var wg sync.WaitGroup
	for w, c := range r.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := r.topo.connList[w]
			channel := r.topo.channels[w]
			p := newPacer(r.cfg.Rate, len(r.conns))
			var recent [8]string
			nextCustomer := 0
			for i := 0; r.load.Err() == nil; i++ {
				if limit > 0 && r.opened.Load() >= limit {
					return
				}
				start := p.wait(r.load, i)
				if r.load.Err() != nil {
					return
				}
				var cust string
				if mixed && i%2 == 1 && nextCustomer > 0 {
					cust = recent[mix(uint64(i))%uint64(min(nextCustomer, len(recent)))]
				} else {
					cust = "c" + strconv.Itoa(w) + "-" + strconv.Itoa(nextCustomer)
					recent[nextCustomer%len(recent)] = cust
					nextCustomer++
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				var res api.CustomerMessageResult
				_, err := c.call(ctx, "customer_message", api.CustomerMessageArgs{Channel: channel, CustomerID: cust, CustomerName: "Customer " + cust, Text: "Hello, I need help with my order"}, &res)
				cancel()
				now := time.Now()
				if !r.answered("customer_message", w, start, now, err) {
					continue
				}
				switch {
				case res.Created:
					if n := requestNumber([]byte(res.Request)); n != 0 {
						r.acks.set(n, now)
					}
					r.opened.Add(1)
					r.listEvents[l].Add(1) // request.created to the list's subscribers
				case r.rewriteUpdates && res.State != api.StateActive:
					r.listEvents[l].Add(1) // request.updated: the customer wrote again
				}
			}
		}()
	}
	wg.Wait()
}

// onAgentEvent is the agents' handler in pull and mixed: it measures the
// notification latency of request.created and sends the owner of a
// handled request into its conversation.
func (r *caseRun) onAgentEvent(a *agentConn, ev *eventHead) {
	if api.EventKind(ev.kind) != api.EvRequestCreated || ev.req == 0 {
		return
	}
	if r.measuring.Load() {
		if ack, ok := r.acks.get(ev.req); ok && ev.at.After(ack) {
			r.notifLat.Record(a.idx, ev.at.Sub(ack))
		} else {
			r.notifLat.Record(a.idx, 0) // read before the ack was: no delay
			r.early.Add(1)
		}
	}
	l, ok := r.topo.listIdx[string(ev.list)]
	if !ok || r.load.Err() != nil || r.topo.owner(l, ev.req) != a.idx {
		return
	}
	if float64(mix(ev.req^0x5bd1e995)%1000) >= r.handle*1000 {
		return
	}
	r.convs.Add(1)
	go r.converse(a, l, "R"+strconv.FormatUint(ev.req, 10), ev.req)
}

// converse is an agent handling one request: join, (mixed) send messages,
// sometimes leave and join again, close.
func (r *caseRun) converse(a *agentConn, l int, req string, n uint64) {
	defer r.convs.Add(-1)
	step := func(op string, args any) bool {
		if r.cfg.Think > 0 {
			time.Sleep(r.cfg.Think)
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		defer cancel()
		start := time.Now()
		_, err := a.call(ctx, op, args, nil)
		if err != nil {
			err = fmt.Errorf("agent %s on %s: %w", a.id, req, err)
		}
		return r.answered(op, a.idx, start, time.Now(), err)
	}
	ref := api.RequestArgs{Request: req}
	if !step("join", ref) {
		return
	}
	r.listEvents[l].Add(1) // request.updated
	if r.k.Scenario == ScenarioMixed {
		for range r.cfg.Messages {
			if !step("send", api.SendArgs{Request: req, Text: "Thanks for waiting, let me check that for you"}) {
				return
			}
		}
	}
	if float64(mix(n^0x27d4eb2f)%1000) < r.cfg.LeaveRatio*1000 {
		if !step("leave", ref) {
			return
		}
		r.listEvents[l].Add(1) // request.updated (INACTIVE)
		if !step("join", ref) {
			return
		}
		r.listEvents[l].Add(1)
	}
	if step("close", ref) {
		r.listEvents[l].Add(1) // request.removed
	}
}

// onPushEvent is the agents' handler in push: an offer is accepted after
// the think time, and the conversation closed after another. The offer's
// notification latency is from the customer message's acknowledgement to
// the offered agent reading offer.created.
func (r *caseRun) onPushEvent(a *agentConn, ev *eventHead) {
	if api.EventKind(ev.kind) != api.EvOfferCreated {
		return
	}
	var offer struct {
		ID      string `msgpack:"id"`
		Request struct {
			ID string `msgpack:"id"`
		} `msgpack:"request"`
	}
	if err := msgpack.Unmarshal(ev.data, &offer); err != nil {
		r.fail("offer.created", fmt.Errorf("agent %s: %w", a.id, err))
		return
	}
	if r.measuring.Load() {
		if ack, ok := r.acks.get(requestNumber([]byte(offer.Request.ID))); ok && ev.at.After(ack) {
			r.notifLat.Record(a.idx, ev.at.Sub(ack))
		} else {
			r.notifLat.Record(a.idx, 0)
			r.early.Add(1)
		}
	}
	r.convs.Add(1)
	go r.serveOffer(a, offer.Request.ID, offer.ID)
}

// serveOffer accepts an offer and closes the conversation.
func (r *caseRun) serveOffer(a *agentConn, req, offerID string) {
	defer r.convs.Add(-1)
	for _, st := range []struct {
		op   string
		args any
	}{
		{"accept_offer", api.OfferArgs{Request: req, OfferID: offerID}},
		{"close", api.RequestArgs{Request: req}},
	} {
		if r.cfg.Think > 0 {
			time.Sleep(r.cfg.Think)
		}
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		start := time.Now()
		_, err := a.call(ctx, st.op, st.args, nil)
		cancel()
		if err != nil {
			err = fmt.Errorf("agent %s on %s: %w", a.id, req, err)
		}
		if !r.answered(st.op, a.idx, start, time.Now(), err) {
			return
		}
	}
	r.closed.Add(1)
}
