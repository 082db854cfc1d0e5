package transport

import (
	"context"

	"github.com/switchboard/switchboard/fsm"
)

// Typed helpers: one line each over Call, so that every op has a Go name and
// a result type, and the wire names come from the fsm command table.

// clientOp returns the wire name of a registered command.
func clientOp(op fsm.Op) string { return fsm.Commands.Lookup(op).Name }

// clientDo calls op and returns its result decoded as R.
func clientDo[R any](ctx context.Context, c *Client, op string, args any) (R, error) {
	var r R
	err := c.Call(ctx, op, args, &r)
	return r, err
}

// clientCredential is the result of create_agent and create_connector: the
// node generates the token and keeps only its SHA-256.
type clientCredential struct {
	ID    string `msgpack:"id"`
	Token string `msgpack:"token"`
}

// Admin writes.

// CreateMRD creates a media routing domain.
func (c *Client) CreateMRD(ctx context.Context, a fsm.CreateMRDArgs) error {
	return c.Call(ctx, clientOp(fsm.OpCreateMRD), a, nil)
}

// CreateChannelType creates a channel type within an MRD.
func (c *Client) CreateChannelType(ctx context.Context, a fsm.CreateChannelTypeArgs) error {
	return c.Call(ctx, clientOp(fsm.OpCreateChannelType), a, nil)
}

// CreateList creates a list.
func (c *Client) CreateList(ctx context.Context, a fsm.CreateListArgs) error {
	return c.Call(ctx, clientOp(fsm.OpCreateList), a, nil)
}

// CreateQueue creates a push-mode queue.
func (c *Client) CreateQueue(ctx context.Context, a fsm.CreateQueueArgs) error {
	return c.Call(ctx, clientOp(fsm.OpCreateQueue), a, nil)
}

// CreateChannel creates a channel routed to a list (pull) or queue (push).
func (c *Client) CreateChannel(ctx context.Context, a fsm.CreateChannelArgs) error {
	return c.Call(ctx, clientOp(fsm.OpCreateChannel), a, nil)
}

// CreateAgent creates an agent and returns the token it logs in with; the
// node keeps only the token's hash, so this is the only time it is seen.
func (c *Client) CreateAgent(ctx context.Context, a fsm.CreateAgentArgs) (token string, err error) {
	r, err := clientDo[clientCredential](ctx, c, clientOp(fsm.OpCreateAgent), a)
	return r.Token, err
}

// CreateConnector creates a channel connector and returns its token.
func (c *Client) CreateConnector(ctx context.Context, a fsm.CreateConnectorArgs) (token string, err error) {
	r, err := clientDo[clientCredential](ctx, c, clientOp(fsm.OpCreateConnector), a)
	return r.Token, err
}

// DeleteList deletes a list that has no open requests and no channel.
func (c *Client) DeleteList(ctx context.Context, id string) error {
	return c.Call(ctx, clientOp(fsm.OpDeleteList), fsm.IDArgs{ID: id}, nil)
}

// DeleteAgent deletes an agent that is in no conversation.
func (c *Client) DeleteAgent(ctx context.Context, id string) error {
	return c.Call(ctx, clientOp(fsm.OpDeleteAgent), fsm.IDArgs{ID: id}, nil)
}

// Noop commits a command that changes nothing (the benchmark baseline).
func (c *Client) Noop(ctx context.Context, pad []byte) error {
	return c.Call(ctx, clientOp(fsm.OpNoop), fsm.NoopArgs{Pad: pad}, nil)
}

// Agent and connector writes. agent is "" when an agent acts for itself; an
// admin names the agent it acts for.

// Subscribe subscribes agent to list and returns the list's current requests.
func (c *Client) Subscribe(ctx context.Context, agent, list string) (fsm.ListSnapshot, error) {
	return clientDo[fsm.ListSnapshot](ctx, c, clientOp(fsm.OpSubscribe), fsm.SubscribeArgs{Agent: agent, List: list})
}

// Unsubscribe unsubscribes agent from list.
func (c *Client) Unsubscribe(ctx context.Context, agent, list string) error {
	return c.Call(ctx, clientOp(fsm.OpUnsubscribe), fsm.SubscribeArgs{Agent: agent, List: list}, nil)
}

// CustomerMessage brings a customer's message in (connectors).
func (c *Client) CustomerMessage(ctx context.Context, a fsm.CustomerMessageArgs) (fsm.CustomerMessageResult, error) {
	return clientDo[fsm.CustomerMessageResult](ctx, c, clientOp(fsm.OpCustomerMessage), a)
}

// RequestAgent records that the customer asks for a (new) agent (connectors).
func (c *Client) RequestAgent(ctx context.Context, a fsm.RequestAgentArgs) (fsm.RequestAgentResult, error) {
	return clientDo[fsm.RequestAgentResult](ctx, c, clientOp(fsm.OpRequestAgent), a)
}

// Join puts agent in the conversation of request.
func (c *Client) Join(ctx context.Context, request, agent string) (fsm.JoinResult, error) {
	return clientDo[fsm.JoinResult](ctx, c, clientOp(fsm.OpJoin), fsm.RequestArgs{Request: request, Agent: agent})
}

// Leave takes agent out of the conversation of request.
func (c *Client) Leave(ctx context.Context, request, agent string) error {
	return c.Call(ctx, clientOp(fsm.OpLeave), fsm.RequestArgs{Request: request, Agent: agent}, nil)
}

// CloseRequest closes request and removes it from its list.
func (c *Client) CloseRequest(ctx context.Context, request string) error {
	return c.Call(ctx, clientOp(fsm.OpClose), fsm.RequestArgs{Request: request}, nil)
}

// Send adds agent's message to the conversation of request.
func (c *Client) Send(ctx context.Context, request, agent, text string) error {
	return c.Call(ctx, clientOp(fsm.OpSend), fsm.SendArgs{Request: request, Agent: agent, Text: text}, nil)
}

// Reads, answered from the connected node's state.

// MRDs lists the media routing domains (admins).
func (c *Client) MRDs(ctx context.Context) ([]fsm.MRD, error) {
	return clientDo[[]fsm.MRD](ctx, c, fsm.QueryMRDs, nil)
}

// ChannelTypes lists the channel types (admins).
func (c *Client) ChannelTypes(ctx context.Context) ([]fsm.ChannelType, error) {
	return clientDo[[]fsm.ChannelType](ctx, c, fsm.QueryChannelTypes, nil)
}

// Channels lists the channels (admins).
func (c *Client) Channels(ctx context.Context) ([]fsm.Channel, error) {
	return clientDo[[]fsm.Channel](ctx, c, fsm.QueryChannels, nil)
}

// Lists lists the lists (admins).
func (c *Client) Lists(ctx context.Context) ([]fsm.ListInfo, error) {
	return clientDo[[]fsm.ListInfo](ctx, c, fsm.QueryLists, nil)
}

// Queues lists the queues (admins).
func (c *Client) Queues(ctx context.Context) ([]fsm.Queue, error) {
	return clientDo[[]fsm.Queue](ctx, c, fsm.QueryQueues, nil)
}

// Agents lists the agents (admins).
func (c *Client) Agents(ctx context.Context) ([]fsm.AgentInfo, error) {
	return clientDo[[]fsm.AgentInfo](ctx, c, fsm.QueryAgents, nil)
}

// Connectors lists the connectors (admins).
func (c *Client) Connectors(ctx context.Context) ([]fsm.ConnectorInfo, error) {
	return clientDo[[]fsm.ConnectorInfo](ctx, c, fsm.QueryConnectors, nil)
}

// List returns a list and its open requests (admins, subscribed agents).
func (c *Client) List(ctx context.Context, list string) (fsm.ListSnapshot, error) {
	return clientDo[fsm.ListSnapshot](ctx, c, fsm.QueryList, fsm.QueryArgs{List: list})
}

// Request returns a request with its recent transcript.
func (c *Client) Request(ctx context.Context, request string) (fsm.ConversationView, error) {
	return clientDo[fsm.ConversationView](ctx, c, fsm.QueryRequest, fsm.QueryArgs{Request: request})
}

// View returns the caller's stream view, as in a sync event (agents,
// connectors).
func (c *Client) View(ctx context.Context) (fsm.StreamView, error) {
	return clientDo[fsm.StreamView](ctx, c, fsm.QueryView, nil)
}

// Status returns the connected node's view of itself and of the cluster.
func (c *Client) Status(ctx context.Context) (NodeStatus, error) {
	return clientDo[NodeStatus](ctx, c, "status", nil) // a node op, not an fsm query
}
