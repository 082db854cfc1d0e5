package transport

import "context"

// linearizableKey marks a context as that of a linearizable read.
type linearizableKey struct{}

// WithLinearizable returns a context asking for a linearizable read. On the
// client side, Call sends the request with "linearizable": true; on the
// server side, the server passes it to Backend.Query for a request that
// carried the flag, and the backend confirms the leader's commit index
// (read index) and waits until its own state has applied it before
// answering.
func WithLinearizable(ctx context.Context) context.Context {
	return context.WithValue(ctx, linearizableKey{}, true)
}

// IsLinearizable reports whether ctx asks for a linearizable read.
func IsLinearizable(ctx context.Context) bool {
	v, _ := ctx.Value(linearizableKey{}).(bool)
	return v
}
