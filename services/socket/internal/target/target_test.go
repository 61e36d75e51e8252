package target_test

import (
	"slices"
	"testing"

	_ "google.golang.org/grpc" // registers the dns resolver
	"google.golang.org/grpc/resolver"

	"github.com/streamgate/streamgate/services/socket/internal/target"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name     string
		raw      string
		static   []string
		resolved bool
		bad      bool
	}{
		{"one address", "127.0.0.1:9000", []string{"passthrough:///127.0.0.1:9000"}, false, false},
		{"a list", "a:1, b:2", []string{"passthrough:///a:1", "passthrough:///b:2"}, false, false},
		{"static scheme", "static:///a:1,b:2", []string{"passthrough:///a:1", "passthrough:///b:2"}, false, false},
		{"unix", "unix:///tmp/s.sock", []string{"unix:///tmp/s.sock"}, false, false},
		{"dns resolves", "dns:///users:9000", nil, true, false},
		{"empty", "", nil, false, true},
		{"empty list", "static:///,", nil, false, true},
		{"unknown scheme", "nope:///x", nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := target.Parse(tc.raw)
			if (err != nil) != tc.bad {
				t.Fatalf("Parse(%q) error %v, want error %v", tc.raw, err, tc.bad)
			}
			if !slices.Equal(got.Static, tc.static) || (got.Builder != nil) != tc.resolved {
				t.Fatalf("Parse(%q) = %+v, want static %v resolved %v", tc.raw, got, tc.static, tc.resolved)
			}
		})
	}
}

func TestConnSortsAndDropsRepeats(t *testing.T) {
	var got []string
	c := target.Conn{Update: func(a []string) { got = a }}
	_ = c.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: "b:1"}, {Addr: "a:1"}, {Addr: "b:1"}}})
	if want := []string{"passthrough:///a:1", "passthrough:///b:1"}; !slices.Equal(got, want) {
		t.Fatalf("Update got %v, want %v", got, want)
	}
}
