package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/transport"
)

// setupConcurrency bounds the admin commands and dials in flight during
// setup.
const setupConcurrency = 64

// callTimeout bounds every command the bench sends.
const callTimeout = 30 * time.Second

// parallel runs fn(0..n-1) with at most conc running at once and returns
// the first error.
func parallel(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		once  sync.Once
		first error
	)
	for range min(n, conc) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// topology is the entities a case creates: an MRD, a channel type, Lists
// lists, one connector per connection, each with a pull channel of its
// own on list i mod Lists (so a conversation's events go to one
// connector session, as with one connector per channel in production),
// and the agents with their subscriptions.
type topology struct {
	// push: the "lists" are push queues, channels route in push mode,
	// agents are members of their queues (agentLists) with capacity max.
	push       bool
	max        int
	prefix     string
	mrd        string
	lists      []string
	listIdx    map[string]int
	channels   []string // one per connector
	connectors []string
	connTokens []string
	connList   []int // list index of each connector
	agents     []string
	agentToks  []string
	agentLists [][]int // lists each agent subscribes to
	supers     []string
	superToks  []string
	subs       [][]int // agents subscribed to each list, ascending
}

func newTopology(prefix string, lists, connectors, agents, subsPerAgent, supervisors int) *topology {
	t := &topology{prefix: prefix, mrd: prefix + "-mrd", listIdx: map[string]int{}}
	for i := range supervisors {
		t.supers = append(t.supers, fmt.Sprintf("%s-s%d", prefix, i))
	}
	for i := range lists {
		id := fmt.Sprintf("%s-l%d", prefix, i)
		t.lists = append(t.lists, id)
		t.listIdx[id] = i
	}
	for i := range connectors {
		t.connectors = append(t.connectors, fmt.Sprintf("%s-cn%d", prefix, i))
		t.channels = append(t.channels, fmt.Sprintf("%s-ch%d", prefix, i))
		t.connList = append(t.connList, i%lists)
	}
	t.subs = make([][]int, lists)
	for i := range agents {
		t.agents = append(t.agents, fmt.Sprintf("%s-a%d", prefix, i))
		var ls []int
		for j := range subsPerAgent {
			l := (i*subsPerAgent + j) % lists
			ls = append(ls, l)
			t.subs[l] = append(t.subs[l], i)
		}
		t.agentLists = append(t.agentLists, ls)
	}
	return t
}

// create makes the entities through the admin client.
func (t *topology) create(ctx context.Context, admin *transport.Client) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	ct := t.prefix + "-ct"
	if err := admin.CreateMRD(cctx, api.CreateMRDArgs{ID: t.mrd, Name: "bench"}); err != nil {
		return fmt.Errorf("create mrd: %w", err)
	}
	if err := admin.CreateChannelType(cctx, api.CreateChannelTypeArgs{ID: ct, MRD: t.mrd}); err != nil {
		return fmt.Errorf("create channel type: %w", err)
	}
	if err := parallel(cctx, len(t.lists), setupConcurrency, func(ctx context.Context, i int) error {
		if t.push {
			if err := admin.CreateQueue(ctx, api.CreateQueueArgs{ID: t.lists[i], Name: t.lists[i], MRD: t.mrd, OfferTimeoutMs: 60_000}); err != nil {
				return fmt.Errorf("create queue: %w", err)
			}
			return nil
		}
		if err := admin.CreateList(ctx, api.CreateListArgs{ID: t.lists[i], Name: t.lists[i]}); err != nil {
			return fmt.Errorf("create list: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	t.connTokens = make([]string, len(t.connectors))
	if err := parallel(cctx, len(t.connectors), setupConcurrency, func(ctx context.Context, i int) error {
		ch := api.CreateChannelArgs{ID: t.channels[i], Type: ct, Mode: api.ModePull, List: t.lists[t.connList[i]]}
		if t.push {
			ch.Mode, ch.List, ch.Queue = api.ModePush, "", t.lists[t.connList[i]]
		}
		if err := admin.CreateChannel(ctx, ch); err != nil {
			return fmt.Errorf("create channel: %w", err)
		}
		tok, err := admin.CreateConnector(ctx, api.CreateConnectorArgs{ID: t.connectors[i], Channels: []string{t.channels[i]}})
		t.connTokens[i] = tok
		if err != nil {
			return fmt.Errorf("create connector: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	t.superToks = make([]string, len(t.supers))
	if err := parallel(cctx, len(t.supers), setupConcurrency, func(ctx context.Context, i int) error {
		var cred struct {
			Token string `msgpack:"token"`
		}
		if err := admin.Call(ctx, api.OpCreateSupervisor, api.CreateSupervisorArgs{ID: t.supers[i]}, &cred); err != nil {
			return fmt.Errorf("create supervisor: %w", err)
		}
		t.superToks[i] = cred.Token
		return nil
	}); err != nil {
		return err
	}
	t.agentToks = make([]string, len(t.agents))
	return parallel(cctx, len(t.agents), setupConcurrency, func(ctx context.Context, i int) error {
		a := api.CreateAgentArgs{ID: t.agents[i], Name: t.agents[i]}
		if t.push {
			a.Max = map[string]int{t.mrd: t.max}
		}
		tok, err := admin.CreateAgent(ctx, a)
		t.agentToks[i] = tok
		if err != nil {
			return fmt.Errorf("create agent: %w", err)
		}
		if t.push {
			for _, q := range t.agentLists[i] {
				if err := admin.Call(ctx, "add_queue_member", api.QueueMemberArgs{Agent: t.agents[i], Queue: t.lists[q]}, nil); err != nil {
					return fmt.Errorf("add queue member: %w", err)
				}
			}
		}
		return nil
	})
}

// owner is the agent who handles request n of list l: one of the list's
// subscribers, spread evenly.
func (t *topology) owner(l int, n uint64) int {
	s := t.subs[l]
	if len(s) == 0 {
		return -1
	}
	return s[mix(n)%uint64(len(s))]
}

// mix scrambles a request number so that owners and the handled fraction
// do not follow arrival order.
func mix(n uint64) uint64 {
	n ^= n >> 33
	n *= 0xff51afd7ed558ccd
	n ^= n >> 33
	return n
}
