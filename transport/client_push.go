package transport

import (
	"context"

	"github.com/switchboard/switchboard/api"
)

// Typed helpers of push routing (see client_ops.go). agent is "" when an
// agent acts for itself; an admin names the agent it acts for. Those that
// return a view answer a retry the cluster answered with its record with
// the view read after it (client_applied.go); Transfer's and Invite's is
// then the offer's id and its request's only. There is no
// helper for offer_timeout: only the leader's timers (role system) send it.

// Login logs agent in: NOT_READY in every MRD until it sets itself READY.
func (c *Client) Login(ctx context.Context, agent string) (api.AgentStatus, error) {
	return clientView(ctx, c, api.OpLogin, api.AgentArgs{Agent: agent}, c.rereadStatus)
}

// Logout logs agent out; its pending offers go to other agents.
func (c *Client) Logout(ctx context.Context, agent string) (api.AgentStatus, error) {
	return clientView(ctx, c, api.OpLogout, api.AgentArgs{Agent: agent}, c.rereadStatus)
}

// SetAgentState sets an agent READY or NOT_READY (with a reason) in an MRD.
func (c *Client) SetAgentState(ctx context.Context, a api.SetAgentStateArgs) (api.AgentStatus, error) {
	return clientView(ctx, c, api.OpSetAgentState, a, c.rereadStatus)
}

// SetAgentMode switches agent between auto (push) and pull chat mode.
func (c *Client) SetAgentMode(ctx context.Context, agent string, mode api.AgentMode) (api.AgentStatus, error) {
	return clientView(ctx, c, api.OpSetAgentMode, api.SetAgentModeArgs{Agent: agent, Mode: mode}, c.rereadStatus)
}

// AddQueueMember makes agent a member of queue (admins).
func (c *Client) AddQueueMember(ctx context.Context, agent, queue string) error {
	return c.Call(ctx, api.OpAddQueueMember, api.QueueMemberArgs{Agent: agent, Queue: queue}, nil)
}

// RemoveQueueMember takes agent out of queue (admins).
func (c *Client) RemoveQueueMember(ctx context.Context, agent, queue string) error {
	return c.Call(ctx, api.OpRemoveQueueMember, api.QueueMemberArgs{Agent: agent, Queue: queue}, nil)
}

// SetPullPolicy sets the global queue pull policy (admins).
func (c *Client) SetPullPolicy(ctx context.Context, policy api.PullPolicy) error {
	return c.Call(ctx, api.OpSetPullPolicy, api.SetPullPolicyArgs{Policy: policy}, nil)
}

// RequestChat asks for the next request (pull chat mode).
func (c *Client) RequestChat(ctx context.Context, agent string) (api.RequestChatResult, error) {
	return clientView(ctx, c, api.OpRequestChat, api.AgentArgs{Agent: agent}, c.rereadRequestChat)
}

// AcceptOffer accepts a pending offer: the agent joins the conversation.
func (c *Client) AcceptOffer(ctx context.Context, a api.OfferArgs) (api.JoinResult, error) {
	return clientView(ctx, c, api.OpAcceptOffer, a, c.rereadConversation)
}

// RejectOffer rejects a pending offer: the request goes to another agent.
func (c *Client) RejectOffer(ctx context.Context, a api.OfferArgs) error {
	return c.Call(ctx, api.OpRejectOffer, a, nil)
}

// Transfer hands a conversation to another agent, who is offered it.
func (c *Client) Transfer(ctx context.Context, a api.TransferArgs) (api.OfferInfo, error) {
	return clientView(ctx, c, api.OpTransfer, a, c.rereadOffer)
}

// TransferToQueue puts a push conversation back in a queue.
func (c *Client) TransferToQueue(ctx context.Context, a api.TransferToQueueArgs) error {
	return c.Call(ctx, api.OpTransferToQueue, a, nil)
}

// Invite offers another agent to join a conversation (conference).
func (c *Client) Invite(ctx context.Context, a api.TransferArgs) (api.OfferInfo, error) {
	return clientView(ctx, c, api.OpInvite, a, c.rereadOffer)
}

// Queue returns a queue with its waiting requests and pending offers
// (admins, members of the queue).
func (c *Client) Queue(ctx context.Context, queue string) (api.QueueView, error) {
	return clientDo[api.QueueView](ctx, c, api.QueryQueue, api.QueryArgs{Queue: queue})
}

// AgentStates returns every agent's routing status (admins), or the
// caller's own (agents).
func (c *Client) AgentStates(ctx context.Context) ([]api.AgentStatus, error) {
	return clientDo[[]api.AgentStatus](ctx, c, api.QueryAgentStates, nil)
}
