package fsm

import (
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
)

// Encoded-size estimates of what views carry. Each is an upper bound of the
// msgpack encoding of the value by any of the node's encoders (msgpack's
// reflection encoder, compact ints or not, and msgp.AppendValue): a string
// of n bytes takes at most n+5, an integer 9, a map or array header 5, and
// each key its length plus one; the fixed parts below round those up.
// view_size_test.go holds them to the real encoders, with every string at
// its longest.

// Fixed parts of the estimates: keys, headers, integers and the overhead
// of every string field, whatever its length.
const (
	summaryFixed      = 256
	messageFixed      = 96
	conversationFixed = 96
	listHeaderFixed   = 128
	strOverhead       = 5
)

func strSize(s string) int { return len(s) + strOverhead }

// summarySize bounds the encoding of a RequestSummary.
func summarySize(sum *api.RequestSummary) int {
	n := summaryFixed + strSize(sum.ID) + strSize(sum.Channel) + strSize(sum.List) + strSize(sum.Queue) +
		strSize(sum.Customer.ID) + strSize(sum.Customer.Name) + strSize(string(sum.State)) +
		strSize(sum.Preview) + strSize(sum.Latest) + strSize(string(sum.SLA))
	for _, p := range sum.Participants {
		n += strSize(p)
	}
	return n
}

// messageSize bounds the encoding of a transcript Message.
func messageSize(m *api.Message) int {
	return messageFixed + strSize(m.From.ID) + strSize(m.Name) + strSize(m.Text)
}

// conversationSize bounds the encoding of a ConversationView.
func conversationSize(v *api.ConversationView) int {
	n := conversationFixed + summarySize(&v.Request)
	for i := range v.Transcript {
		n += messageSize(&v.Transcript[i])
	}
	return n
}

// queuedSize bounds the encoding of a QueuedRequest.
func queuedSize(w *api.QueuedRequest) int {
	n := conversationFixed + summarySize(&w.Request)
	for _, d := range w.Declined {
		n += strSize(d)
	}
	return n
}

// listHeaderSize bounds the encoding of a ListSnapshot without its
// requests.
func listHeaderSize(l *List) int { return listHeaderFixed + strSize(l.ID) + strSize(l.Name) }

// summary is r's summary as the list views and events show it. From level
// 3 its preview and latest hold at most api.MaxPreviewBytes (cut at a
// character boundary), so that a summary stays small whatever the
// customer wrote: every other string in it is an id or a name, at most
// api.MaxIDBytes, and the participants at most api.MaxParticipants.
func (s *State) summary(r *Request) api.RequestSummary {
	sum := r.summary()
	if s.ActiveLevel() >= Level3 {
		sum.Preview = cutUTF8(sum.Preview, api.MaxPreviewBytes)
		sum.Latest = cutUTF8(sum.Latest, api.MaxPreviewBytes)
	}
	return sum
}

// cutUTF8 returns the longest prefix of s of at most n bytes that does not
// end inside a character. Texts are valid UTF-8 (checkText).
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func (r *Request) summary() api.RequestSummary {
	sum := api.RequestSummary{
		ID:           r.ID,
		Channel:      r.Channel,
		List:         r.List,
		Queue:        r.Queue,
		Customer:     r.Customer,
		State:        r.State,
		Participants: r.Participants,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
	}
	if sum.Participants == nil {
		sum.Participants = []string{}
	}
	for _, m := range r.Transcript {
		if m.From.Role == api.RoleConnector {
			sum.Preview = m.Text
			break
		}
	}
	sum.SLA = r.SLA
	if r.Unread > 0 {
		sum.Unread = r.Unread
		for i := len(r.Transcript) - 1; i >= 0; i-- {
			if m := r.Transcript[i]; m.From.Role == api.RoleConnector {
				sum.Latest = m.Text
				break
			}
		}
	}
	return sum
}
