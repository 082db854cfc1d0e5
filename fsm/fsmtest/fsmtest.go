// Package fsmtest holds fixtures for the tests of fsm and of the packages
// built over it (cluster's Raft adapter, actors): the walkthrough's setup,
// its principals and command shorthands, so that every package tests the
// same world.
package fsmtest

import (
	"github.com/switchboard/switchboard/api"
	"github.com/switchboard/switchboard/fsm"
)

// T0 is the leader time of the walkthrough setup (unix nanoseconds).
const T0 = int64(1_700_000_000_000_000_000)

// Principals of the walkthrough.
var (
	Admin = api.Principal{Role: api.RoleAdmin, ID: "admin"}
	FB    = api.Principal{Role: api.RoleConnector, ID: "fb"}  // allowed on C2 (pull, L1)
	Web   = api.Principal{Role: api.RoleConnector, ID: "web"} // allowed on W1 (push, Q1)
	A1    = api.Principal{Role: api.RoleAgent, ID: "A1"}      // subscribed to L1, max 2 in social
	A2    = api.Principal{Role: api.RoleAgent, ID: "A2"}      // subscribed to L1
	A3    = api.Principal{Role: api.RoleAgent, ID: "A3"}      // subscribed to L2 only
	// System is the engine itself (timers, the leader's upkeep).
	System = api.Principal{Role: api.RoleSystem, ID: "leader"}
)

// Cmd builds a command with no idempotency key and no time of its own (the
// state's clock stays where it is).
func Cmd(op fsm.Op, by api.Principal, args any) *fsm.Command {
	return &fsm.Command{Op: op, By: by, Args: args}
}

// Keyed gives c an idempotency key.
func Keyed(client string, seq uint64, c *fsm.Command) *fsm.Command {
	c.ClientID, c.Seq = client, seq
	return c
}

// WalkthroughCommands is the admin setup of the Facebook walkthrough: MRD
// social with channel type facebook, lists L1 and L2, pull channel C2 on L1,
// a push channel W1 on queue Q1 (MRD chat), agents A1 (max 2 in social), A2
// and A3, connectors fb (C2) and web (W1); A1 and A2 subscribe to L1, A3 to
// L2. It starts by raising the state to this build's feature level, as a
// cluster's leader does: the tests exercise the current rules.
func WalkthroughCommands() []*fsm.Command {
	tok := []byte("hash")
	cs := []*fsm.Command{
		Cmd(fsm.OpSetFeatureLevel, System, &api.FeatureLevelArgs{Level: fsm.MaxLevel}),
		Cmd(fsm.OpCreateMRD, Admin, &api.CreateMRDArgs{ID: "social", Name: "Social"}),
		Cmd(fsm.OpCreateMRD, Admin, &api.CreateMRDArgs{ID: "chat", Name: "Chat"}),
		Cmd(fsm.OpCreateChannelType, Admin, &api.CreateChannelTypeArgs{ID: "facebook", MRD: "social"}),
		Cmd(fsm.OpCreateChannelType, Admin, &api.CreateChannelTypeArgs{ID: "webchat", MRD: "chat"}),
		Cmd(fsm.OpCreateList, Admin, &api.CreateListArgs{ID: "L1", Name: "Facebook"}),
		Cmd(fsm.OpCreateList, Admin, &api.CreateListArgs{ID: "L2", Name: "Other"}),
		Cmd(fsm.OpCreateQueue, Admin, &api.CreateQueueArgs{ID: "Q1", Name: "Web", MRD: "chat", Priority: 1, OfferTimeoutMs: 30000}),
		Cmd(fsm.OpCreateChannel, Admin, &api.CreateChannelArgs{ID: "C2", Type: "facebook", Mode: api.ModePull, List: "L1"}),
		Cmd(fsm.OpCreateChannel, Admin, &api.CreateChannelArgs{ID: "W1", Type: "webchat", Mode: api.ModePush, Queue: "Q1"}),
		Cmd(fsm.OpCreateAgent, Admin, &api.CreateAgentArgs{ID: "A1", Name: "Ann", Max: map[string]int{"social": 2}, TokenHash: tok}),
		Cmd(fsm.OpCreateAgent, Admin, &api.CreateAgentArgs{ID: "A2", Name: "Bob", TokenHash: tok}),
		Cmd(fsm.OpCreateAgent, Admin, &api.CreateAgentArgs{ID: "A3", Name: "Cid", TokenHash: tok}),
		Cmd(fsm.OpCreateConnector, Admin, &api.CreateConnectorArgs{ID: "fb", Name: "Facebook", Channels: []string{"C2"}, TokenHash: tok}),
		Cmd(fsm.OpCreateConnector, Admin, &api.CreateConnectorArgs{ID: "web", Name: "Web", Channels: []string{"W1"}, TokenHash: tok}),
		Cmd(fsm.OpSubscribe, A1, &api.SubscribeArgs{List: "L1"}),
		Cmd(fsm.OpSubscribe, A2, &api.SubscribeArgs{List: "L1"}),
		Cmd(fsm.OpSubscribe, A3, &api.SubscribeArgs{List: "L2"}),
	}
	for _, c := range cs {
		c.Time = T0
	}
	return cs
}
