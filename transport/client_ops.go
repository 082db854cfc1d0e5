package transport

import (
	"context"

	"github.com/switchboard/switchboard/api"
)

// Typed helpers: one line each over Call, so that every op has a Go name and
// a result type, and the wire names are api.Op* constants.

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
func (c *Client) CreateMRD(ctx context.Context, a api.CreateMRDArgs) error {
	return c.Call(ctx, api.OpCreateMRD, a, nil)
}

// CreateChannelType creates a channel type within an MRD.
func (c *Client) CreateChannelType(ctx context.Context, a api.CreateChannelTypeArgs) error {
	return c.Call(ctx, api.OpCreateChannelType, a, nil)
}

// CreateList creates a list.
func (c *Client) CreateList(ctx context.Context, a api.CreateListArgs) error {
	return c.Call(ctx, api.OpCreateList, a, nil)
}

// CreateQueue creates a push-mode queue.
func (c *Client) CreateQueue(ctx context.Context, a api.CreateQueueArgs) error {
	return c.Call(ctx, api.OpCreateQueue, a, nil)
}

// CreateChannel creates a channel routed to a list (pull) or queue (push).
func (c *Client) CreateChannel(ctx context.Context, a api.CreateChannelArgs) error {
	return c.Call(ctx, api.OpCreateChannel, a, nil)
}

// CreateAgent creates an agent and returns the token it logs in with; the
// node keeps only the token's hash, so this is the only time it is seen.
func (c *Client) CreateAgent(ctx context.Context, a api.CreateAgentArgs) (token string, err error) {
	r, err := clientDo[clientCredential](ctx, c, api.OpCreateAgent, a)
	return r.Token, err
}

// CreateConnector creates a channel connector and returns its token.
func (c *Client) CreateConnector(ctx context.Context, a api.CreateConnectorArgs) (token string, err error) {
	r, err := clientDo[clientCredential](ctx, c, api.OpCreateConnector, a)
	return r.Token, err
}

// DeleteList deletes a list that has no open requests and no channel.
func (c *Client) DeleteList(ctx context.Context, id string) error {
	return c.Call(ctx, api.OpDeleteList, api.IDArgs{ID: id}, nil)
}

// DeleteAgent deletes an agent that is in no conversation.
func (c *Client) DeleteAgent(ctx context.Context, id string) error {
	return c.Call(ctx, api.OpDeleteAgent, api.IDArgs{ID: id}, nil)
}

// DeleteConnector deletes a connector (feature level 2).
func (c *Client) DeleteConnector(ctx context.Context, id string) error {
	return c.Call(ctx, api.OpDeleteConnector, api.IDArgs{ID: id}, nil)
}

// GrantList lets agent subscribe to list once the list is restricted
// (feature level 3).
func (c *Client) GrantList(ctx context.Context, list, agent string) error {
	return c.Call(ctx, api.OpGrantList, api.ListGrantArgs{List: list, Agent: agent}, nil)
}

// RevokeList takes agent's grant of list back; on a restricted list the
// agent is unsubscribed (feature level 3).
func (c *Client) RevokeList(ctx context.Context, list, agent string) error {
	return c.Call(ctx, api.OpRevokeList, api.ListGrantArgs{List: list, Agent: agent}, nil)
}

// SetListAccess opens or restricts list; restricting it unsubscribes every
// agent without a grant (feature level 3).
func (c *Client) SetListAccess(ctx context.Context, list string, access api.ListAccess) error {
	return c.Call(ctx, api.OpSetListAccess, api.ListAccessArgs{List: list, Access: access}, nil)
}

// Noop commits a command that changes nothing (the benchmark baseline).
func (c *Client) Noop(ctx context.Context, pad []byte) error {
	return c.Call(ctx, api.OpNoop, api.NoopArgs{Pad: pad}, nil)
}

// Agent and connector writes. agent is "" when an agent acts for itself; an
// admin names the agent it acts for.

// Subscribe subscribes agent to list and returns the list's current requests
// (for a retry answered from the cluster's record, read after it:
// client_applied.go).
func (c *Client) Subscribe(ctx context.Context, agent, list string) (api.ListSnapshot, error) {
	return clientView(ctx, c, api.OpSubscribe, api.SubscribeArgs{Agent: agent, List: list}, c.rereadList)
}

// Unsubscribe unsubscribes agent from list.
func (c *Client) Unsubscribe(ctx context.Context, agent, list string) error {
	return c.Call(ctx, api.OpUnsubscribe, api.SubscribeArgs{Agent: agent, List: list}, nil)
}

// CustomerMessage brings a customer's message in (connectors).
func (c *Client) CustomerMessage(ctx context.Context, a api.CustomerMessageArgs) (api.CustomerMessageResult, error) {
	return clientDo[api.CustomerMessageResult](ctx, c, api.OpCustomerMessage, a)
}

// RequestAgent records that the customer asks for a (new) agent (connectors).
func (c *Client) RequestAgent(ctx context.Context, a api.RequestAgentArgs) (api.RequestAgentResult, error) {
	return clientDo[api.RequestAgentResult](ctx, c, api.OpRequestAgent, a)
}

// Join puts agent in the conversation of request.
func (c *Client) Join(ctx context.Context, request, agent string) (api.JoinResult, error) {
	return clientView(ctx, c, api.OpJoin, api.RequestArgs{Request: request, Agent: agent}, c.rereadConversation)
}

// Leave takes agent out of the conversation of request.
func (c *Client) Leave(ctx context.Context, request, agent string) error {
	return c.Call(ctx, api.OpLeave, api.RequestArgs{Request: request, Agent: agent}, nil)
}

// CloseRequest closes request and removes it from its list.
func (c *Client) CloseRequest(ctx context.Context, request string) error {
	return c.Call(ctx, api.OpClose, api.RequestArgs{Request: request}, nil)
}

// Send adds agent's message to the conversation of request.
func (c *Client) Send(ctx context.Context, request, agent, text string) error {
	return c.Call(ctx, api.OpSend, api.SendArgs{Request: request, Agent: agent, Text: text}, nil)
}

// Reads, answered from the connected node's state.

// MRDs lists the media routing domains (admins).
func (c *Client) MRDs(ctx context.Context) ([]api.MRD, error) {
	return clientDo[[]api.MRD](ctx, c, api.QueryMRDs, nil)
}

// ChannelTypes lists the channel types (admins).
func (c *Client) ChannelTypes(ctx context.Context) ([]api.ChannelType, error) {
	return clientDo[[]api.ChannelType](ctx, c, api.QueryChannelTypes, nil)
}

// Channels lists the channels (admins).
func (c *Client) Channels(ctx context.Context) ([]api.Channel, error) {
	return clientDo[[]api.Channel](ctx, c, api.QueryChannels, nil)
}

// Lists lists the lists (admins).
func (c *Client) Lists(ctx context.Context) ([]api.ListInfo, error) {
	return clientDo[[]api.ListInfo](ctx, c, api.QueryLists, nil)
}

// Queues lists the queues (admins).
func (c *Client) Queues(ctx context.Context) ([]api.Queue, error) {
	return clientDo[[]api.Queue](ctx, c, api.QueryQueues, nil)
}

// Agents lists the agents (admins).
func (c *Client) Agents(ctx context.Context) ([]api.AgentInfo, error) {
	return clientDo[[]api.AgentInfo](ctx, c, api.QueryAgents, nil)
}

// Connectors lists the connectors (admins).
func (c *Client) Connectors(ctx context.Context) ([]api.ConnectorInfo, error) {
	return clientDo[[]api.ConnectorInfo](ctx, c, api.QueryConnectors, nil)
}

// List returns a list and the first page of its open requests (admins,
// subscribed agents): ListPage with no cursor and the default limit.
func (c *Client) List(ctx context.Context, list string) (api.ListSnapshot, error) {
	return clientDo[api.ListSnapshot](ctx, c, api.QueryList, api.QueryArgs{List: list})
}

// ListPage returns the open requests of list after the request id after
// ("" for the first), at most limit (0: the node's default). More says
// there are others: ask again after the last one.
func (c *Client) ListPage(ctx context.Context, list, after string, limit int) (api.ListSnapshot, error) {
	return clientDo[api.ListSnapshot](ctx, c, api.QueryList, api.QueryArgs{List: list, After: after, Limit: limit})
}

// Conversations returns the caller's conversations after the request id
// after, oldest first (agents, connectors): the rest of a sync or view
// that said more_conversations.
func (c *Client) Conversations(ctx context.Context, after string, limit int) (api.ConversationPage, error) {
	return clientDo[api.ConversationPage](ctx, c, api.QueryConversations, api.QueryArgs{After: after, Limit: limit})
}

// Request returns a request with its recent transcript.
func (c *Client) Request(ctx context.Context, request string) (api.ConversationView, error) {
	return clientDo[api.ConversationView](ctx, c, api.QueryRequest, api.QueryArgs{Request: request})
}

// View returns the caller's stream view, as in a sync event (agents,
// connectors).
func (c *Client) View(ctx context.Context) (api.StreamView, error) {
	return clientDo[api.StreamView](ctx, c, api.QueryView, nil)
}

// Status returns the connected node's view of itself and of the cluster.
func (c *Client) Status(ctx context.Context) (api.NodeStatus, error) {
	return clientDo[api.NodeStatus](ctx, c, "status", nil) // answered by the node, not by the state
}
