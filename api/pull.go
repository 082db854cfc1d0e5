package api

// SubscribeArgs subscribes an agent to a list (or unsubscribes it). An
// agent may only name itself; an admin may name any agent.
type SubscribeArgs struct {
	Agent string `msgpack:"agent"`
	List  string `msgpack:"list"`
}

// CustomerMessageArgs brings a customer's message in on a channel. It opens
// a new request when the customer has none open on the channel.
type CustomerMessageArgs struct {
	Channel      string `msgpack:"channel"`
	CustomerID   string `msgpack:"customer_id"`
	CustomerName string `msgpack:"customer_name"`
	Text         string `msgpack:"text"`
	// Priority orders a new push request in its queue (higher first);
	// ignored for pull channels and for a request already open.
	Priority int `msgpack:"priority,omitempty"`
}

// CustomerMessageResult says which request the message went to.
type CustomerMessageResult struct {
	Request string       `msgpack:"request"`
	Created bool         `msgpack:"created"`
	State   RequestState `msgpack:"state"`
}

// RequestAgentArgs records that the customer asks for a (new) agent. Name
// the request, or the channel and customer.
type RequestAgentArgs struct {
	Request    string `msgpack:"request"`
	Channel    string `msgpack:"channel"`
	CustomerID string `msgpack:"customer_id"`
}

// RequestAgentResult tells whether anything was announced.
type RequestAgentResult struct {
	Request   string       `msgpack:"request"`
	State     RequestState `msgpack:"state"`
	Announced bool         `msgpack:"announced"`
}

// RequestArgs names a request and, for admin callers, the agent acting.
type RequestArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
}

// SendArgs is an agent's message into a conversation.
type SendArgs struct {
	Request string `msgpack:"request"`
	Agent   string `msgpack:"agent"`
	Text    string `msgpack:"text"`
}

// JoinResult is the conversation as the joining agent finds it.
type JoinResult struct {
	Request    RequestSummary `msgpack:"request"`
	Transcript []Message      `msgpack:"transcript"`
}
