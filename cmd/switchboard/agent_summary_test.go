package main

import (
	"strings"
	"testing"

	"github.com/switchboard/switchboard/api"
)

// The console shows how many messages wait unread, and the latest, once
// the customer has written more than the opening message.
func TestDescribeSummaryUnread(t *testing.T) {
	base := api.RequestSummary{ID: "R1", Channel: "C2", State: api.StateUnread, Customer: api.Customer{ID: "john"}, Preview: "Where is my order?"}
	one := base
	one.Unread, one.Latest = 1, base.Preview
	if got := describeSummary(one); strings.Contains(got, "unread") {
		t.Errorf("the opening message alone: %q mentions unread", got)
	}
	two := base
	two.Unread, two.Latest = 2, "Hello?"
	if got := describeSummary(two); !strings.Contains(got, `(2 unread, latest "Hello?")`) {
		t.Errorf("two unread: %q", got)
	}
}
