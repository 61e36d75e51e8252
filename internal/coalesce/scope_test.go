package coalesce_test

import (
	"strings"
	"testing"

	"github.com/streamgate/streamgate/internal/coalesce"
)

// TestPrincipalScope: the scope is part of coalescing keys and of stored
// idempotency scopes, so its form must not change: every part quoted as
// strconv.Quote does, joined by commas.
func TestPrincipalScope(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("r", 200)
	for _, tc := range []struct {
		name    string
		subject string
		roles   []string
		want    string
	}{
		{"zero", "", nil, `""`},
		{"subject", "alice", nil, `"alice"`},
		{"roles", "alice", []string{"admin", "ops"}, `"alice","admin","ops"`},
		{"roles without subject", "", []string{"admin"}, `"","admin"`},
		{"quotes and commas", `a","b`, []string{"x\n"}, `"a\",\"b","x\n"`},
		{"longer than the stack buffer", long, []string{long}, `"` + long + `","` + long + `"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := coalesce.Scope(tc.subject, tc.roles); got != tc.want {
				t.Fatalf("Scope() = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestPrincipalScopeAllocations: Scope is on every coalesced read's path.
func TestPrincipalScopeAllocations(t *testing.T) {
	roles := []string{"admin", "ops"}
	if n := testing.AllocsPerRun(100, func() { _ = coalesce.Scope("alice", roles) }); n > 1 {
		t.Fatalf("Scope() allocates %v times, want at most 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = coalesce.Scope("", nil) }); n != 0 {
		t.Fatalf("the zero principal's Scope() allocates %v times, want 0", n)
	}
}
