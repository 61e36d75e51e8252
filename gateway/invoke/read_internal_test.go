package invoke

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
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

// A lookup finds what was stored under the read's key although it makes
// the key in a buffer the next lookup reuses; a miss keeps a key of its
// own that later lookups do not change, small or past the pooled size.
func TestLookupKeysInPooledBuffers(t *testing.T) {
	t.Parallel()
	rd := &reader{cache: cache.New(1<<20, cache.NewLocalGenerations())}
	ctx := context.Background()
	run := func(id string, body []byte) *readRun {
		return &readRun{rd: rd, key: readKey{service: "users", action: "GET_USER", id: id, version: "v1", body: body}}
	}
	big := []byte(`{"q":"` + strings.Repeat("x", maxPooledKey) + `"}`)
	var misses []*readRun
	for _, r := range []*readRun{run("1", nil), run("2", nil), run("3", big), run("4", nil)} {
		if _, ok := r.lookup(ctx); ok {
			t.Fatalf("%s: a hit in an empty cache", r.key.id)
		}
		if r.cacheKey != r.key.String() {
			t.Fatalf("%s: cacheKey %q, want %q", r.key.id, r.cacheKey, r.key.String())
		}
		rd.cache.Put(r.cacheKey, nil, nil, json.RawMessage(`{"id":"`+r.key.id+`"}`), nil, time.Hour)
		misses = append(misses, r)
	}
	for _, m := range misses {
		if m.cacheKey != m.key.String() {
			t.Fatalf("%s: cacheKey changed to %q by later lookups", m.key.id, m.cacheKey)
		}
		r := run(m.key.id, m.key.body)
		e, ok := r.lookup(ctx)
		if !ok || string(e.Result) != `{"id":"`+m.key.id+`"}` {
			t.Fatalf("%s: lookup after Put: %v %s", m.key.id, ok, e.Result)
		}
		if r.cacheKey != "" {
			t.Fatalf("%s: a hit made a key of its own", m.key.id)
		}
	}
}

// TestOnlyAHitSettlesItsInvocation: a read the in-process cache answers
// at lookup settles its invocation, so the edge's Release may reuse it; a
// read that asks the service, alone or in a flight of identical reads,
// does not, since what it started may outlive the request.
func TestOnlyAHitSettlesItsInvocation(t *testing.T) {
	t.Parallel()
	client, err := caller.Dial("127.0.0.1:1") // nothing listens: a request waits out its deadline
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	route := &config.Route{Form: config.FormItem, Method: http.MethodGet, Action: "GET_USER", Service: "users", CacheTTL: time.Hour}
	users := &config.Resource{Name: "users", Service: "users", Routes: []*config.Route{route}}
	tbl := &Table{cfg: &config.Config{}, clients: map[string]*caller.Client{"users": client}}
	info := caller.ActionInfo{Read: true}
	newInvocation := func() *Invocation {
		in := &Invocation{Method: http.MethodGet}
		in.prepared = prepared{resolved: resolved{version: &config.Version{Name: "v1"}, resource: users, route: route, id: "1"}}
		return in
	}
	for _, coalescing := range []bool{false, true} {
		rd := &reader{cache: cache.New(1<<20, cache.NewLocalGenerations()), flights: new(coalesce.Group), coalesce: coalescing}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		in := newInvocation()
		a := rd.read(ctx, tbl, in, nil, info, true)
		cancel()
		if a.XCache != "miss" || a.Err == nil || in.settled {
			t.Fatalf("coalescing %v: a read the service answered: X-Cache %q, error %v, settled %v", coalescing, a.XCache, a.Err, in.settled)
		}
		key := rd.planRead(tbl, newInvocation(), nil, info).key.String()
		rd.cache.Put(key, nil, nil, json.RawMessage(`{"id":"1"}`), nil, time.Hour)
		in = newInvocation()
		a = rd.read(context.Background(), tbl, in, nil, info, false)
		if a.XCache != "hit" || a.Err != nil || strings.TrimSpace(string(a.Envelope)) != `{"ok":true,"result":{"id":"1"}}` || !in.settled {
			t.Fatalf("coalescing %v: a hit: X-Cache %q, error %v, %s, settled %v", coalescing, a.XCache, a.Err, a.Envelope, in.settled)
		}
	}
}
