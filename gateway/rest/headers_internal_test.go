package rest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestClientTimeout reads both forms of a client's deadline and refuses
// what is neither.
func TestClientTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, header, value string
		want                time.Duration
		bad                 bool
	}{
		{"none", "", "", 0, false},
		{"grpc milliseconds", "Grpc-Timeout", "500m", 500 * time.Millisecond, false},
		{"grpc seconds", "Grpc-Timeout", "2S", 2 * time.Second, false},
		{"grpc bad unit", "Grpc-Timeout", "2x", 0, true},
		{"grpc too long", "Grpc-Timeout", "1234567890S", 0, true},
		{"duration", "Timeout", "2s", 2 * time.Second, false},
		{"milliseconds", "Timeout", "250", 250 * time.Millisecond, false},
		{"negative", "Timeout", "-1s", 0, true},
		{"words", "Timeout", "soon", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			if tc.header != "" {
				h.Set(tc.header, tc.value)
			}
			got, err := clientTimeout(h)
			if (err != nil) != tc.bad || got != tc.want {
				t.Fatalf("clientTimeout(%s: %q) = %v, %v; want %v, error %v", tc.header, tc.value, got, err, tc.want, tc.bad)
			}
		})
	}
}

// TestHeaderNamesAreCanonical: the names get looks up are in canonical
// form, as the server stores request headers.
func TestHeaderNamesAreCanonical(t *testing.T) {
	t.Parallel()
	for _, name := range []string{HeaderRequestID, HeaderIdempotencyKey, HeaderAPIKey, headerGRPCTimeout, headerTimeout,
		HeaderTraceParent, HeaderTraceState, HeaderReplayed, HeaderRetryAfter, headerAuthorization, headerCacheControl,
		headerIfNoneMatch, headerContentType, headerOrigin} {
		if c := http.CanonicalHeaderKey(name); c != name {
			t.Errorf("header name %q is not canonical (%q)", name, c)
		}
	}
	h := http.Header{}
	h.Set("x-api-key", "k")
	if got := get(h, HeaderAPIKey); got != "k" {
		t.Fatalf("get = %q; want what Header.Set stored", got)
	}
}

// The answer's X-Request-Id values: the client's own when it sent one
// sane id, its first when it sent several, a new id otherwise.
func TestRequestIDValues(t *testing.T) {
	t.Parallel()
	newID := func(id string) bool {
		if len(id) != 32 {
			return false
		}
		for _, c := range id {
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
		return true
	}
	cases := []struct {
		name   string
		sent   []string
		want   string // "" for a new id
		shared bool   // the client's own values are used
	}{
		{"none", nil, "", false},
		{"sane", []string{"req-1"}, "req-1", true},
		{"two", []string{"req-1", "req-2"}, "req-1", false},
		{"control characters", []string{"req\n1"}, "", false},
		{"empty", []string{""}, "", false},
		{"too long", []string{strings.Repeat("a", 129)}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{Header: http.Header{}}
			if tc.sent != nil {
				r.Header[HeaderRequestID] = tc.sent
			}
			got := requestIDValues(r)
			if len(got) != 1 {
				t.Fatalf("values %q, want one", got)
			}
			if tc.want == "" && !newID(got[0]) || tc.want != "" && got[0] != tc.want {
				t.Fatalf("id %q, want %q (\"\": a new one)", got[0], tc.want)
			}
			if shared := tc.sent != nil && &got[0] == &tc.sent[0]; shared != tc.shared {
				t.Fatalf("the client's values shared: %v, want %v", shared, tc.shared)
			}
			if again := requestIDValues(r); tc.want == "" && again[0] == got[0] {
				t.Fatal("two requests got the same new id")
			}
		})
	}
}
