package invoke

import (
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket"
)

// TestReaderSharesWhatItMadeOnce: Cache-Control values and callers'
// scopes are made once and equal to what is made per request, and a
// caller whose roles changed gets the scope of its new roles.
func TestReaderSharesWhatItMadeOnce(t *testing.T) {
	t.Parallel()
	var rd reader
	cc := rd.cacheControlOf(true, 90*time.Second)
	if len(cc) != 1 || cc[0] != "public, max-age=90" {
		t.Fatalf("Cache-Control %q", cc)
	}
	if again := rd.cacheControlOf(true, 90*time.Second); &again[0] != &cc[0] {
		t.Fatal("Cache-Control made twice")
	}
	if p := rd.cacheControlOf(false, 90*time.Second); p[0] != "private, max-age=90" {
		t.Fatalf("Cache-Control %q", p)
	}
	alice := socket.Principal{Subject: "alice", Roles: []string{"admin"}}
	if got, want := rd.scopeOf(alice), coalesce.Scope("alice", []string{"admin"}); got != want {
		t.Fatalf("scope %q; want %q", got, want)
	}
	if got, want := rd.scopeOf(alice), coalesce.Scope("alice", []string{"admin"}); got != want {
		t.Fatalf("scope again %q; want %q", got, want)
	}
	demoted := socket.Principal{Subject: "alice", Roles: []string{"user"}}
	if got, want := rd.scopeOf(demoted), coalesce.Scope("alice", []string{"user"}); got != want {
		t.Fatalf("scope with new roles %q; want %q", got, want)
	}
}
