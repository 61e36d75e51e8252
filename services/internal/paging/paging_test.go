package paging_test

import (
	"slices"
	"testing"

	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

func TestSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   int
		want int
		code status.Code
	}{
		{"zero is the default", 0, paging.Default, ""},
		{"one", 1, 1, ""},
		{"max", paging.Max, paging.Max, ""},
		{"negative", -1, 0, socket.CodeInvalidArgument},
		{"above max", paging.Max + 1, 0, socket.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := paging.Size(tc.in)
			if tc.code == "" {
				if err != nil || got != tc.want {
					t.Fatalf("Size(%d) = %d, %v; want %d, nil", tc.in, got, err, tc.want)
				}
				return
			}
			e := status.AsError(err)
			if err == nil || e.Code != tc.code || e.Details["field"] != "page_size" {
				t.Fatalf("Size(%d) error = %v (details %v); want %s with field page_size", tc.in, err, e.Details, tc.code)
			}
			if want := "page_size must be between 0 and 1000, got " + itoa(tc.in); e.Message != want {
				t.Fatalf("message %q, want %q", e.Message, want)
			}
		})
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + itoa(n%10)
}

func TestCut(t *testing.T) {
	t.Parallel()
	key := func(s string) string { return "k" + s }
	for _, tc := range []struct {
		name  string
		items []string
		size  int
		page  []string
		next  string
	}{
		{"nil is an empty page", nil, 2, []string{}, ""},
		{"fewer than a page", []string{"a"}, 2, []string{"a"}, ""},
		{"exactly a page", []string{"a", "b"}, 2, []string{"a", "b"}, ""},
		{"one more: a next page", []string{"a", "b", "c"}, 2, []string{"a", "b"}, "kb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			page, next := paging.Cut(tc.items, tc.size, key)
			if page == nil || !slices.Equal(page, tc.page) || next != tc.next {
				t.Fatalf("Cut = %q, %q; want %q, %q", page, next, tc.page, tc.next)
			}
			p := paging.PageOf(tc.items, tc.size, key)
			if p.Items == nil || !slices.Equal(p.Items, tc.page) || p.NextPageToken != tc.next {
				t.Fatalf("PageOf = %+v; want the page %q and the token %q", p, tc.page, tc.next)
			}
		})
	}
}

func TestFirst(t *testing.T) {
	t.Parallel()
	id := func(s string) string { return s }
	for _, tc := range []struct {
		name  string
		items []string
		limit int
		want  []string
	}{
		{"nil is empty", nil, 3, []string{}},
		{"sorted byte-wise", []string{"b", "B", "a"}, 3, []string{"B", "a", "b"}},
		{"cut to the limit", []string{"c", "a", "b"}, 2, []string{"a", "b"}},
		{"zero limit: none", []string{"a"}, 0, []string{}},
		{"negative limit: none", []string{"a"}, -1, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := paging.First(slices.Clone(tc.items), tc.limit, id)
			if got == nil || !slices.Equal(got, tc.want) {
				t.Fatalf("First(%q, %d) = %q, want %q", tc.items, tc.limit, got, tc.want)
			}
		})
	}
}
