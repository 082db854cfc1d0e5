// Package console is the supervisors' web console that every node serves
// on its HTTP listener under /console/: a login page, the wallboard, the
// agents table and a request page (plain HTML, CSS and JavaScript embedded
// with go:embed, no build step), a live event stream over Server-Sent
// Events, and a small JSON API for the supervisor's actions.
//
// The console holds no state of its own that a browser depends on, so a
// load balancer may send any request to any node of the cluster:
//
//   - The session is a cookie that says who logged in and until when, and
//     is MAC'd (HMAC-SHA256) with a key derived from the cluster secret,
//     which every node shares. The MAC covers the SHA-256 of the token
//     the supervisor logged in with, and every request checks that the
//     replicated state still holds that hash: a deleted supervisor, or one
//     whose token was replaced, is logged out everywhere at once.
//   - A state-changing request needs the CSRF token the page carries (a
//     MAC of the session cookie, so also valid on every node) in the
//     X-CSRF-Token header, and must not come from another origin
//     (Sec-Fetch-Site, Origin).
//   - GET /console/events streams the supervisor's event stream (the same
//     one a TCP client gets, api.SupervisorKey): each SSE id is the event's
//     sequence number, so a browser that reconnects, to this node or
//     another, sends Last-Event-ID and resumes with no gap and no
//     duplicate, or gets a fresh sync when the node's history no longer
//     covers it.
//   - Each action is one write committed with the supervisor as principal
//     under the page's client id and a sequence number of its own, so a
//     retried POST is answered from the idempotency record, not applied
//     twice.
//
// Every buffer is bounded: a stream's queue (frames and bytes; a browser
// that falls behind is cut off and reconnects), the streams per supervisor
// and in total, request bodies, failed logins per source address and
// actions per supervisor. docs/OPERATIONS.md ("Web console") is the
// operator's view; docs/PROTOCOL.md §20 the stream's.
package console
