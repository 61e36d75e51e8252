package socket_test

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/socket"
)

// TestPrincipalScope: the scope is part of coalescing keys and of stored
// idempotency scopes, so its form must not change: every part quoted as
// strconv.Quote does, joined by commas.
func TestPrincipalScope(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("r", 200)
	for _, tc := range []struct {
		name string
		p    socket.Principal
		want string
	}{
		{"zero", socket.Principal{}, `""`},
		{"subject", socket.Principal{Subject: "alice"}, `"alice"`},
		{"roles", socket.Principal{Subject: "alice", Roles: []string{"admin", "ops"}}, `"alice","admin","ops"`},
		{"roles without subject", socket.Principal{Roles: []string{"admin"}}, `"","admin"`},
		{"quotes and commas", socket.Principal{Subject: `a","b`, Roles: []string{"x\n"}}, `"a\",\"b","x\n"`},
		{"longer than the stack buffer", socket.Principal{Subject: long, Roles: []string{long}}, `"` + long + `","` + long + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.p.Scope(); got != tc.want {
				t.Fatalf("Scope() = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestPrincipalScopeAllocations: Scope is on every coalesced read's path.
func TestPrincipalScopeAllocations(t *testing.T) {
	p := socket.Principal{Subject: "alice", Roles: []string{"admin", "ops"}}
	if n := testing.AllocsPerRun(100, func() { _ = p.Scope() }); n > 1 {
		t.Fatalf("Scope() allocates %v times, want at most 1", n)
	}
	var zero socket.Principal
	if n := testing.AllocsPerRun(100, func() { _ = zero.Scope() }); n != 0 {
		t.Fatalf("the zero Principal's Scope() allocates %v times, want 0", n)
	}
}
