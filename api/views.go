package api

// What a node sends is bounded, whatever the size of the state: no frame
// grows with the number of requests, messages or lists. A view (a sync,
// get_view, a list, a queue, a subscribe's list view) carries a first page
// of what it shows, and says when there is more; paged reads fetch the
// rest (docs/PROTOCOL.md §18).
const (
	// MaxNodeFrame is the largest frame payload a node sends: no event,
	// sync or answer exceeds it. A client must accept frames up to this
	// size; the Go client's default limit is this. An answer that would
	// exceed it (an admin listing of a very large configuration) is
	// refused with CodeFrameTooLarge instead: page it with after and
	// limit.
	MaxNodeFrame = 4 << 20
	// MaxViewBytes bounds the requests, conversations and waiting
	// requests one view carries, by the size of their encoding (an upper
	// bound of it, reckoned from the length of their strings): what does
	// not fit is left for the next page. A sync shares it across the
	// caller's conversations and lists.
	MaxViewBytes = 1 << 20
	// DefaultPageSize is how many items a page holds when the read names
	// no limit, and how many requests of each list, and how many
	// conversations, a sync carries at most. MaxPageSize bounds a read's
	// limit (a larger one counts as MaxPageSize).
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxPreviewBytes bounds a request summary's preview and latest: the
	// message's first bytes, cut at a character boundary (feature level
	// 3).
	MaxPreviewBytes = 256
	// MaxParticipants is the most agents a conversation holds (feature
	// level 3): a join, an invitation or an accepted offer beyond it
	// fails with CodeOverCapacity.
	MaxParticipants = 16
	// MaxAgentLists is the most lists an agent may be subscribed to
	// (feature level 3): a subscribe beyond it fails with
	// CodeOverCapacity.
	MaxAgentLists = 256
	// MaxAgentOffers is the most pending offers an agent holds before a
	// transfer or an invitation to it fails with CodeOverCapacity
	// (feature level 3). Routing offers are at most one per MRD anyway.
	MaxAgentOffers = 64
)

// QueryConversations {after?, limit?} → ConversationPage: the caller's
// conversations (an agent's: those it is in; a connector's: the open
// requests of its channels), oldest first, after the request id after.
const QueryConversations = "get_conversations"

// ConversationPage is a page of the caller's conversations: what a sync
// or get_view left out when it set more_conversations.
type ConversationPage struct {
	Conversations []ConversationView `msgpack:"conversations"`
	// More says there are conversations after the last one carried.
	More bool `msgpack:"more,omitempty"`
	// Seq is the point of the event stream the page reflects (SyncSeq of
	// the log index the node had applied).
	Seq uint64 `msgpack:"seq,omitempty"`
}

// SyncSeq is the sequence number of a view of the state at log index: it
// comes after every event of that entry and before the next entry's.
func SyncSeq(index uint64) uint64 { return index<<SeqShift | (1<<SeqShift - 1) }
