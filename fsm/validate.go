package fsm

import (
	"slices"
	"unicode/utf8"

	"github.com/switchboard/switchboard/api"
)

// checkID validates an identifier: 1..MaxIDBytes bytes of letters, digits
// and . _ - : @ (no spaces, no control characters).
func checkID(field, id string) *api.Error {
	if id == "" {
		return api.Errorf(api.CodeBadRequest, "%s is required", field)
	}
	if len(id) > api.MaxIDBytes {
		return api.Errorf(api.CodeBadRequest, "%s is longer than %d bytes", field, api.MaxIDBytes)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '-', r == ':', r == '@':
		default:
			return api.Errorf(api.CodeBadRequest, "%s %q has a character outside [A-Za-z0-9._:@-]", field, id)
		}
	}
	return nil
}

// checkText validates free text: valid UTF-8 of at most max bytes.
func checkText(field, text string, max int, required bool) *api.Error {
	if required && text == "" {
		return api.Errorf(api.CodeBadRequest, "%s is required", field)
	}
	if len(text) > max {
		return api.Errorf(api.CodeBadRequest, "%s is longer than %d bytes", field, max)
	}
	if !utf8.ValidString(text) {
		return api.Errorf(api.CodeBadRequest, "%s is not valid UTF-8", field)
	}
	return nil
}

// insertSorted returns a new slice with v inserted in order, and whether v
// was absent. The input slice is never modified, so events that captured it
// stay valid.
func insertSorted(xs []string, v string) ([]string, bool) {
	i, found := slices.BinarySearch(xs, v)
	if found {
		return xs, false
	}
	out := make([]string, 0, len(xs)+1)
	out = append(out, xs[:i]...)
	out = append(out, v)
	return append(out, xs[i:]...), true
}

// removeSorted returns a new slice without v, and whether v was present.
func removeSorted(xs []string, v string) ([]string, bool) {
	i, found := slices.BinarySearch(xs, v)
	if !found {
		return xs, false
	}
	out := make([]string, 0, len(xs)-1)
	out = append(out, xs[:i]...)
	return append(out, xs[i+1:]...), true
}

// containsSorted reports whether sorted xs holds v.
func containsSorted(xs []string, v string) bool {
	_, found := slices.BinarySearch(xs, v)
	return found
}

// removeOrdered returns xs without the first v, keeping order (copying).
func removeOrdered(xs []string, v string) []string {
	i := slices.Index(xs, v)
	if i < 0 {
		return xs
	}
	out := make([]string, 0, len(xs)-1)
	out = append(out, xs[:i]...)
	return append(out, xs[i+1:]...)
}
