// Package paging is how the services' LIST actions page: a page_size from
// 0 (the default) to Max, and pages cut from one item more than the page
// so that the last item's key becomes the next page token.
//
//	size, err := paging.Size(in.PageSize) // INVALID_ARGUMENT outside 0…Max
//	items, err := st.List(ctx, Query{After: in.PageToken, Limit: size + 1})
//	return paging.PageOf(items, size, func(u User) string { return u.ID }), nil
//
// Memory stores answer such a query with First:
//
//	return paging.First(matching, q.Limit, func(u User) string { return u.ID }), nil
package paging

import (
	"slices"
	"strings"

	"github.com/streamgate/streamgate/services/socket"
)

// The page sizes.
const (
	// Default is the size of a page when the body asks for 0 (or nothing).
	Default = 50
	// Max is the largest page_size a body may ask for.
	Max = 1000
)

// Page is a LIST action's result: a page of items and the token of the
// next page, empty on the last page.
type Page[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Size validates a LIST body's page_size and applies the default: a size
// outside 0…Max is INVALID_ARGUMENT with details {"field": "page_size"}.
func Size(n int) (int, error) {
	if n < 0 || n > Max {
		return 0, socket.Errorf(socket.CodeInvalidArgument, "page_size must be between 0 and %d, got %d", Max, n).
			WithDetails(map[string]any{"field": "page_size"})
	}
	if n == 0 {
		return Default, nil
	}
	return n, nil
}

// PageOf is Cut's page and next page token as a Page.
func PageOf[T any](items []T, size int, key func(T) string) Page[T] {
	var p Page[T]
	p.Items, p.NextPageToken = Cut(items, size, key)
	return p
}

// Cut returns the first size items, never nil, and the next page token:
// the key of the last item on the page when items holds more than size
// (the store was asked for size+1), else "".
func Cut[T any](items []T, size int, key func(T) string) (page []T, next string) {
	page = items
	if len(items) > size {
		page = items[:size]
		next = key(page[size-1])
	}
	if page == nil {
		page = []T{}
	}
	return page, next
}

// First sorts items by key, byte-wise, and returns the first limit of
// them (none for limit ≤ 0), never nil: a memory store's
// ORDER BY key LIMIT limit.
func First[T any](items []T, limit int, key func(T) string) []T {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	if items == nil {
		items = []T{}
	}
	return items[:min(len(items), max(limit, 0))]
}
