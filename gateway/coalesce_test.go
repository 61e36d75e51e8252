package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/gateway"
	gatewayv1 "github.com/streamgate/streamgate/gen/streamgate/gateway/v1"
	"github.com/streamgate/streamgate/internal/coalesce"
	"github.com/streamgate/streamgate/internal/testhooks"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// cachingYAML routes users (CRUD, cached for a minute, with a per-caller
// profile action), feeds (coalesced, not cached), plains (neither) and
// news (public, cached for 30s) to one service.
const cachingYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  users: {target: "${ADDR_users}", key_env: SERVICE_KEY, timeout: 20s}
versions:
  v1:
    resources:
      users:
        service: users
        crud: [get, list, update]
        cache_ttl: 1m
        actions:
          - {name: profile, method: GET}
      feeds:
        service: users
        singular: feed
        crud: [get]
        cache: false
      plains:
        service: users
        singular: plain
        crud: [get]
        cache: false
        coalesce: false
      news:
        service: users
        singular: news
        crud: [get]
        cache_ttl: 30s
        visibility: public
`

// usersService is the service behind cachingYAML: users kept in memory,
// every run counted. PROFILE, GET_FEED, GET_PLAIN and GET_NEWS report
// their start on started and wait for release (then work 50 ms).
type usersService struct {
	addr    string
	started chan string
	release chan struct{}

	mu    sync.Mutex // guards names, runs
	names map[string]string
	runs  map[string]int
}

func startUsers(t testing.TB, opts ...socket.ServerOption) *usersService {
	t.Helper()
	u := &usersService{
		started: make(chan string, 4096),
		release: make(chan struct{}),
		names:   map[string]string{"1": "Oska", "2": "Ada"},
		runs:    map[string]int{},
	}
	gated := func(ctx context.Context, r *socket.Request) (any, error) {
		u.started <- r.Action
		select {
		case <-u.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		select {
		case <-time.After(50 * time.Millisecond): // the work
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return map[string]any{"id": r.ResourceID, "action": r.Action, "for": r.Meta.Principal.Subject, "roles": r.Meta.Principal.Roles}, nil
	}
	actions := map[string]struct {
		h    func(context.Context, *socket.Request) (any, error)
		opts []socket.ActionOption
	}{
		"GET_USER": {func(_ context.Context, r *socket.Request) (any, error) {
			u.mu.Lock()
			defer u.mu.Unlock()
			name, ok := u.names[r.ResourceID]
			if !ok {
				return nil, socket.Errorf(socket.CodeNotFound, "no user %s", r.ResourceID)
			}
			return map[string]any{"id": r.ResourceID, "name": name}, nil
		}, []socket.ActionOption{socket.Read()}},
		"LIST_USERS": {func(context.Context, *socket.Request) (any, error) {
			u.mu.Lock()
			defer u.mu.Unlock()
			var names []string
			for _, n := range u.names {
				names = append(names, n)
			}
			slices.Sort(names)
			return names, nil
		}, []socket.ActionOption{socket.Read()}},
		"UPDATE_USER": {func(_ context.Context, r *socket.Request) (any, error) {
			var in struct {
				Name string `json:"name"`
			}
			if err := socket.DecodeBody(r.Body, &in); err != nil {
				return nil, err
			}
			u.mu.Lock()
			defer u.mu.Unlock()
			u.names[r.ResourceID] = in.Name
			return map[string]any{"id": r.ResourceID, "name": in.Name}, nil
		}, []socket.ActionOption{socket.Idempotent()}},
		"PROFILE":   {gated, []socket.ActionOption{socket.Read()}},
		"GET_FEED":  {gated, []socket.ActionOption{socket.Read()}},
		"GET_PLAIN": {gated, []socket.ActionOption{socket.Read()}},
		"GET_NEWS":  {gated, []socket.ActionOption{socket.Read(), socket.Public()}},
	}
	u.addr = serveSocket(t, "users", opts, func(srv *socket.Server) error {
		for name, a := range actions {
			err := srv.Handle(name, socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
				u.mu.Lock()
				u.runs[name]++
				u.mu.Unlock()
				res, err := a.h(ctx, r)
				if err != nil {
					return nil, err
				}
				return json.Marshal(res)
			}), a.opts...)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return u
}

// serveSocket serves a socket server with opts and the actions register
// adds, on loopback until the test ends, and returns its address. It
// accepts the gateway's key (serviceKey).
func serveSocket(t testing.TB, name string, opts []socket.ServerOption, register func(*socket.Server) error) string {
	t.Helper()
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: name}, append([]socket.ServerOption{socket.WithKeys(keys), socket.WithDrainTimeout(2 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := register(srv); err != nil {
		t.Fatal(err)
	}
	return sockettest.Serve(t, srv)
}

// open lets the gated actions through from now on.
func (u *usersService) open() { close(u.release) }

func (u *usersService) count(action string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.runs[action]
}

// waitStarted waits for n gated runs to start.
func (u *usersService) waitStarted(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for i := range n {
		select {
		case <-u.started:
		case <-timeout:
			t.Fatalf("%d of %d handler runs started", i, n)
		}
	}
}

// startCachingGateway serves yaml (cachingYAML by default) in front of u.
func startCachingGateway(t testing.TB, yaml string, u *usersService, opts ...gateway.Option) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	if yaml == "" {
		yaml = cachingYAML
	}
	cfg := parseConfig(t, yaml, map[string]*fakeService{"users": {Addr: u.addr}})
	g, err := gateway.New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g, serveHTTP(t, g)
}

// httpClient is one client for many concurrent requests: enough idle
// connections that none waits for another's.
func httpClient(t testing.TB, conns int) *http.Client {
	tr := &http.Transport{MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// reply is a raw HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
	err    error
}

func (r reply) xCache() string { return r.header.Get("X-Cache") }

func send(c *http.Client, method, url, body string, headers ...string) reply {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return reply{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

// get sends a GET and fails the test on transport errors.
func get(t testing.TB, c *http.Client, url string, headers ...string) reply {
	t.Helper()
	r := send(c, "GET", url, "", headers...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r
}

// result decodes the result of a success envelope.
func (r reply) result(t testing.TB) map[string]any {
	t.Helper()
	var env struct {
		OK     bool           `json:"ok"`
		Result map[string]any `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.body), &env); err != nil || !env.OK {
		t.Fatalf("%d %s: not a success envelope (%v)", r.status, r.body, err)
	}
	return env.Result
}

// flightsOf returns the flights of gws, for sockettest.WaitJoined.
func flightsOf(gws ...*gateway.Gateway) []sockettest.Flights {
	var out []sockettest.Flights
	for _, g := range gws {
		out = append(out, gateway.Flights(g))
	}
	return out
}

// routeStats returns the stats ListRoutes shows for a route.
func routeStats(t *testing.T, g *gateway.Gateway, method, path string) *gatewayv1.RouteStats {
	t.Helper()
	c := grpcClient(t, g)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminKey)
	routes, err := c.ListRoutes(ctx, &gatewayv1.ListRoutesRequest{Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes.GetRoutes() {
		if r.GetMethod() == method && r.GetPath() == path {
			return r.GetStats()
		}
	}
	t.Fatalf("no route %s %s", method, path)
	return nil
}

// TestThousandIdenticalGETs sends 1,000 identical GETs at once to a fresh
// gateway (or two) in front of a handler that waits until every request
// is in and then takes 50 ms.
func TestThousandIdenticalGETs(t *testing.T) {
	const n = 1000
	cases := []struct {
		name     string
		gateways int
	}{
		{"one gateway", 1},
		{"two gateways", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inService := &coalesce.Group{}
			u := startUsers(t, socket.WithGRPCServerOptions(testhooks.ServerFlights{Group: inService}))
			var gws []*gateway.Gateway
			var urls []string
			for range tc.gateways {
				g, ts := startCachingGateway(t, "", u)
				gws = append(gws, g)
				urls = append(urls, ts.URL)
			}
			client := httpClient(t, n)
			replies := make(chan reply, n)
			for i := range n {
				go func() {
					replies <- send(client, "GET", urls[i%len(urls)]+"/v1/feeds/42", "", bearer(aliceKey)...)
				}()
			}
			u.waitStarted(t, 1)
			sockettest.WaitJoined(t, n, flightsOf(gws...)...)
			// Each gateway sent one request; the service runs one handler.
			sockettest.WaitJoined(t, tc.gateways, inService)
			u.open()

			xcache := map[string]int{}
			var first string
			for range n {
				r := <-replies
				if r.err != nil || r.status != 200 {
					t.Fatalf("%d %s %v", r.status, r.body, r.err)
				}
				if first == "" {
					first = r.body
				}
				if r.body != first {
					t.Fatalf("answers differ:\n%s\n%s", r.body, first)
				}
				xcache[r.xCache()]++
			}
			if res := (reply{body: first}).result(t); res["id"] != "42" || res["for"] != "alice" || res["action"] != "GET_FEED" {
				t.Fatalf("wrong answer %s", first)
			}
			if got := u.count("GET_FEED"); got != 1 {
				t.Fatalf("the handler ran %d times for %d identical GETs, want 1", got, n)
			}
			if xcache["miss"] != tc.gateways || xcache["coalesced"] != n-tc.gateways {
				t.Fatalf("X-Cache counts %v; want %d miss, the rest coalesced", xcache, tc.gateways)
			}
			coalesced := uint64(0)
			for _, g := range gws {
				coalesced += routeStats(t, g, "GET", "/v1/feeds/{id}").GetCoalesced()
			}
			if coalesced != n-uint64(tc.gateways) {
				t.Fatalf("ListRoutes counts %d coalesced, want %d", coalesced, n-tc.gateways)
			}
		})
	}
	t.Run("public route shares between principals", func(t *testing.T) {
		u := startUsers(t)
		g, ts := startCachingGateway(t, "", u)
		client := httpClient(t, 8)
		who := [][]string{bearer(aliceKey), bearer(adminKey), bearer(token(t, "bob", nil, time.Hour)), bearer(token(t, "carol", []string{"user"}, time.Hour))}
		replies := make(chan reply, len(who))
		for _, h := range who {
			go func() { replies <- send(client, "GET", ts.URL+"/v1/news/1", "", h...) }()
		}
		u.waitStarted(t, 1)
		sockettest.WaitJoined(t, len(who), gateway.Flights(g))
		u.open()
		var first string
		for range who {
			r := <-replies
			if r.err != nil || r.status != 200 || (first != "" && r.body != first) {
				t.Fatalf("%d %s %v (first %s)", r.status, r.body, r.err, first)
			}
			first = r.body
			if cc := r.header.Get("Cache-Control"); cc != "public, max-age=30" {
				t.Fatalf("Cache-Control %q on a public route", cc)
			}
		}
		if got := u.count("GET_NEWS"); got != 1 {
			t.Fatalf("GET_NEWS ran %d times for %d principals on a public route, want 1", got, len(who))
		}
	})
}

// TestThousandIdenticalGETsWithCache is the same burst against a cached
// route and a plain 50 ms handler: requests that come after the one run
// ended are answered from the cache, so it runs once however the burst is
// spread.
func TestThousandIdenticalGETsWithCache(t *testing.T) {
	const n = 1000
	u := startUsers(t)
	u.open()
	_, ts := startCachingGateway(t, "", u)
	client := httpClient(t, n)
	var wg sync.WaitGroup
	replies := make(chan reply, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies <- send(client, "GET", ts.URL+"/v1/users/9/profile", "", bearer(aliceKey)...)
		}()
	}
	wg.Wait()
	close(replies)
	xcache := map[string]int{}
	var first string
	for r := range replies {
		if r.err != nil || r.status != 200 {
			t.Fatalf("%d %s %v", r.status, r.body, r.err)
		}
		if first == "" {
			first = r.body
		}
		if r.body != first {
			t.Fatalf("answers differ:\n%s\n%s", r.body, first)
		}
		xcache[r.xCache()]++
	}
	if res := (reply{body: first}).result(t); res["id"] != "9" || res["for"] != "alice" {
		t.Fatalf("wrong answer %s", first)
	}
	if got := u.count("PROFILE"); got != 1 {
		t.Fatalf("the handler ran %d times for %d identical GETs (X-Cache %v), want 1", got, n, xcache)
	}
	if xcache["miss"] != 1 || xcache["miss"]+xcache["coalesced"]+xcache["hit"] != n {
		t.Fatalf("X-Cache counts %v; want one miss, the rest coalesced or hit", xcache)
	}
}

func TestPerCallerReadsAreNeverShared(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	_, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 64)
	type caller struct {
		subject, roles string
		auth           []string
	}
	callers := []caller{
		{"alice", "[]", bearer(aliceKey)},
		{"admin", "[admin]", bearer(adminKey)},
		{"bob", "[]", bearer(token(t, "bob", nil, time.Hour))},
		{"bob", "[admin]", bearer(token(t, "bob", []string{"admin"}, time.Hour))}, // same subject, other roles
		{"carol", "[user]", bearer(token(t, "carol", []string{"user"}, time.Hour))},
	}
	rolesOf := func(res map[string]any) string {
		if res["roles"] == nil {
			return "[]"
		}
		return fmt.Sprint(res["roles"])
	}
	const each = 10
	type answer struct {
		caller
		reply
	}
	answers := make(chan answer, len(callers)*each)
	for range each {
		for _, c := range callers {
			go func() { answers <- answer{c, send(client, "GET", ts.URL+"/v1/users/7/profile", "", c.auth...)} }()
		}
	}
	// One run per principal starts: had any two shared, this would wait
	// in vain.
	u.waitStarted(t, len(callers))
	u.open()
	for range len(callers) * each {
		a := <-answers
		if a.err != nil || a.status != 200 {
			t.Fatalf("%s: %d %s %v", a.subject, a.status, a.body, a.err)
		}
		if res := a.result(t); res["for"] != a.subject || rolesOf(res) != a.roles {
			t.Fatalf("%s got %s: an answer for someone else", a.subject, a.body)
		}
		if cc := a.header.Get("Cache-Control"); !strings.HasPrefix(cc, "private,") {
			t.Fatalf("Cache-Control %q on a per-caller answer", cc)
		}
	}
	// A later request from each is a hit on its own entry.
	for _, c := range callers {
		r := get(t, client, ts.URL+"/v1/users/7/profile", c.auth...)
		if res := r.result(t); r.xCache() != "hit" || res["for"] != c.subject || rolesOf(res) != c.roles {
			t.Fatalf("%s: X-Cache %s, %s", c.subject, r.xCache(), r.body)
		}
	}
}

func TestWriteThenReadSeesTheWrite(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	_, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 4)
	alice := bearer(aliceKey)
	read := func(path, wantX string) reply {
		t.Helper()
		r := get(t, client, ts.URL+path, alice...)
		if r.xCache() != wantX {
			t.Fatalf("GET %s: X-Cache %q, want %q (%d %s)", path, r.xCache(), wantX, r.status, r.body)
		}
		return r
	}
	read("/v1/users/1", "miss")
	read("/v1/users/1", "hit")
	read("/v1/users/2", "miss")
	read("/v1/users", "miss")
	if r := read("/v1/users", "hit"); strings.TrimSpace(r.body) != `{"ok":true,"result":["Ada","Oska"]}` {
		t.Fatalf("list %s", r.body)
	}

	if r := send(client, "PUT", ts.URL+"/v1/users/1", `{"name":"Ryn"}`, alice...); r.err != nil || r.status != 200 {
		t.Fatalf("PUT: %d %s %v", r.status, r.body, r.err)
	}
	// UPDATE_USER 1 dropped GET_USER 1 and LIST_USERS, not GET_USER 2.
	if r := read("/v1/users/1", "miss"); r.result(t)["name"] != "Ryn" {
		t.Fatalf("read after write: %s", r.body)
	}
	if r := read("/v1/users", "miss"); strings.TrimSpace(r.body) != `{"ok":true,"result":["Ada","Ryn"]}` {
		t.Fatalf("list after write: %s", r.body)
	}
	read("/v1/users/2", "hit")
	read("/v1/users/1", "hit")

	// NOT_FOUND is cached (briefly), and a write to the item drops it.
	if r := read("/v1/users/3", "miss"); r.status != 404 {
		t.Fatalf("GET /v1/users/3: %d %s", r.status, r.body)
	}
	if r := read("/v1/users/3", "hit"); r.status != 404 || u.count("GET_USER") != 4 {
		t.Fatalf("second GET /v1/users/3: %d %s after %d runs", r.status, r.body, u.count("GET_USER"))
	}
	if r := send(client, "PUT", ts.URL+"/v1/users/3", `{"name":"Tam"}`, alice...); r.status != 200 {
		t.Fatalf("PUT: %d %s %v", r.status, r.body, r.err)
	}
	if r := read("/v1/users/3", "miss"); r.status != 200 || r.result(t)["name"] != "Tam" {
		t.Fatalf("GET after the create: %d %s", r.status, r.body)
	}
}

func TestHTTPCaching(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	_, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 4)
	alice := bearer(aliceKey)
	admin := bearer(adminKey)
	url := ts.URL + "/v1/users/1"

	first := get(t, client, url, alice...)
	etag := first.header.Get("ETag")
	if first.status != 200 || !strings.HasPrefix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("first GET: %d, ETag %q", first.status, etag)
	}
	if cc := first.header.Get("Cache-Control"); cc != "private, max-age=60" {
		t.Fatalf("Cache-Control %q; want the route's TTL of 1m as max-age=60, private", cc)
	}
	t.Run("If-None-Match", func(t *testing.T) {
		for _, tc := range []struct {
			name, header string
			status       int
		}{
			{"same tag", etag, 304},
			{"weak form", "W/" + etag, 304},
			{"in a list", `"nope", ` + etag, 304},
			{"any", "*", 304},
			{"other tag", `"nope"`, 200},
		} {
			r := get(t, client, url, append(alice, "If-None-Match", tc.header)...)
			if r.status != tc.status {
				t.Fatalf("%s: %d, want %d", tc.name, r.status, tc.status)
			}
			if r.status == 304 && (r.body != "" || r.header.Get("ETag") != etag) {
				t.Fatalf("%s: 304 with body %q, ETag %q", tc.name, r.body, r.header.Get("ETag"))
			}
		}
	})
	t.Run("no-cache", func(t *testing.T) {
		runs := u.count("GET_USER")
		// Not honoured for a caller without the admin role…
		if r := get(t, client, url, append(alice, "Cache-Control", "no-cache")...); r.xCache() != "hit" || u.count("GET_USER") != runs {
			t.Fatalf("no-cache from alice: X-Cache %q, runs %d → %d", r.xCache(), runs, u.count("GET_USER"))
		}
		// …honoured for an admin: the service answers.
		get(t, client, url, admin...) // admin's own entry (per-caller)
		runs = u.count("GET_USER")
		r := get(t, client, url, append(admin, "Cache-Control", "no-cache")...)
		if r.xCache() != "bypass" || u.count("GET_USER") != runs+1 || r.status != 200 {
			t.Fatalf("no-cache from admin: X-Cache %q, %d, runs %d → %d", r.xCache(), r.status, runs, u.count("GET_USER"))
		}
	})
	t.Run("after a write the old tag no longer matches", func(t *testing.T) {
		if r := send(client, "PUT", url, `{"name":"Ryn"}`, alice...); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
		r := get(t, client, url, append(alice, "If-None-Match", etag)...)
		if r.status != 200 || r.header.Get("ETag") == etag || r.result(t)["name"] != "Ryn" {
			t.Fatalf("after the write: %d, ETag %q (old %q), %s", r.status, r.header.Get("ETag"), etag, r.body)
		}
	})
	t.Run("not cached: no ETag", func(t *testing.T) {
		u.open()
		r := get(t, client, ts.URL+"/v1/feeds/1", alice...)
		if r.status != 200 || r.header.Get("ETag") != "" || r.header.Get("Cache-Control") != "" {
			t.Fatalf("uncached route: %d, ETag %q, Cache-Control %q", r.status, r.header.Get("ETag"), r.header.Get("Cache-Control"))
		}
	})
}

// TestCacheHitSendsTheStoredETag: a hit answers with the ETag stored with
// the entry, not one computed again from the body.
func TestCacheHitSendsTheStoredETag(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	u.open()
	g, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 4)
	url := ts.URL + "/v1/news/1"
	alice := bearer(aliceKey)
	if r := get(t, client, url, alice...); r.status != 200 || r.xCache() != "miss" {
		t.Fatalf("first GET: %d, X-Cache %q, %s", r.status, r.xCache(), r.body)
	}
	const planted = `"planted-etag"`
	if !gateway.SetCachedETag(g, "users", "v1", "GET_NEWS", "1", planted) {
		t.Fatal("the first GET's answer is not in the cache")
	}
	r := get(t, client, url, alice...)
	if r.status != 200 || r.xCache() != "hit" || r.header.Get("ETag") != planted {
		t.Fatalf("hit: %d, X-Cache %q, ETag %q; want the stored %s", r.status, r.xCache(), r.header.Get("ETag"), planted)
	}
	if r := get(t, client, url, append(alice, "If-None-Match", planted)...); r.status != 304 {
		t.Fatalf("If-None-Match with the stored ETag: %d, want 304", r.status)
	}
}

// TestCacheUnavailable: when the cache's generations cannot be read (its
// Redis is down), reads go to the service, uncoalesced and unstored, and
// say so: X-Cache: unavailable, not bypass (which is an admin's no-cache).
func TestCacheUnavailable(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	_, ts := startCachingGateway(t, "redis: redis://127.0.0.1:1/0\n"+cachingYAML, u)
	client := httpClient(t, 4)
	for i := range 2 {
		r := get(t, client, ts.URL+"/v1/users/1", bearer(aliceKey)...)
		if r.status != 200 || r.xCache() != "unavailable" || r.result(t)["name"] != "Oska" || u.count("GET_USER") != i+1 {
			t.Fatalf("GET %d with Redis down: %d, X-Cache %q, runs %d, %s", i, r.status, r.xCache(), u.count("GET_USER"), r.body)
		}
	}
	// An admin's no-cache is still a bypass.
	if r := get(t, client, ts.URL+"/v1/users/1", append(bearer(adminKey), "Cache-Control", "no-cache")...); r.status != 200 || r.xCache() != "bypass" {
		t.Fatalf("no-cache from admin with Redis down: %d, X-Cache %q", r.status, r.xCache())
	}
}

func TestRouteSwitchesTurnCachingAndCoalescingOff(t *testing.T) {
	t.Parallel()
	t.Run("cache: false", func(t *testing.T) {
		t.Parallel()
		u := startUsers(t)
		u.open()
		_, ts := startCachingGateway(t, "", u)
		client := httpClient(t, 4)
		for i := range 3 {
			r := get(t, client, ts.URL+"/v1/feeds/1", bearer(aliceKey)...)
			if r.status != 200 || r.xCache() != "miss" || u.count("GET_FEED") != i+1 {
				t.Fatalf("GET %d: %d, X-Cache %q, runs %d", i, r.status, r.xCache(), u.count("GET_FEED"))
			}
		}
	})
	// The service does not coalesce either: each request that reaches it
	// runs.
	for _, tc := range []struct {
		name string
		path string
		opts []gateway.Option
	}{
		{"coalesce: false", "/v1/plains/1", nil},
		{"WithoutCoalescing", "/v1/feeds/1", []gateway.Option{gateway.WithoutCoalescing()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := startUsers(t, socket.WithoutCoalescing())
			g, ts := startCachingGateway(t, "", u, tc.opts...)
			client := httpClient(t, 16)
			const n = 8
			replies := make(chan reply, n)
			for range n {
				go func() { replies <- send(client, "GET", ts.URL+tc.path, "", bearer(aliceKey)...) }()
			}
			u.waitStarted(t, n) // every request reached the service
			u.open()
			for range n {
				if r := <-replies; r.err != nil || r.status != 200 || r.xCache() != "miss" {
					t.Fatalf("%d %q %v", r.status, r.xCache(), r.err)
				}
			}
			path := strings.Replace(tc.path, "/1", "/{id}", 1)
			if s := routeStats(t, g, "GET", path); s.GetCoalesced() != 0 {
				t.Fatalf("stats %v with coalescing off", s)
			}
		})
	}
	t.Run("WithCacheSize(0)", func(t *testing.T) {
		t.Parallel()
		u := startUsers(t)
		_, ts := startCachingGateway(t, "", u, gateway.WithCacheSize(0))
		client := httpClient(t, 4)
		for i := range 3 {
			r := get(t, client, ts.URL+"/v1/users/1", bearer(aliceKey)...)
			if r.status != 200 || r.xCache() != "miss" || r.header.Get("ETag") != "" || u.count("GET_USER") != i+1 {
				t.Fatalf("GET %d: %d, X-Cache %q, ETag %q, runs %d", i, r.status, r.xCache(), r.header.Get("ETag"), u.count("GET_USER"))
			}
		}
	})
}

func TestRouteStatsCountCacheWork(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	g, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 4)
	alice := bearer(aliceKey)
	for _, step := range []struct{ method, path string }{
		{"GET", "/v1/users/1"},  // miss
		{"GET", "/v1/users/1"},  // hit
		{"GET", "/v1/users/1"},  // hit
		{"GET", "/v1/users/2"},  // miss
		{"PUT", "/v1/users/1"},  // invalidation (counted on the PUT route)
		{"PUT", "/v1/users/2"},  // invalidation
		{"GET", "/v1/users/1"},  // miss
		{"GET", "/v1/users/1"},  // hit
		{"GET", "/v1/users/99"}, // miss (NOT_FOUND)
		{"GET", "/v1/users/99"}, // hit
	} {
		body := ""
		if step.method == "PUT" {
			body = `{"name":"x"}`
		}
		if r := send(client, step.method, ts.URL+step.path, body, alice...); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if s := routeStats(t, g, "GET", "/v1/users/{id}"); s.GetHits() != 4 || s.GetMisses() != 4 || s.GetCoalesced() != 0 || s.GetInvalidations() != 0 {
		t.Fatalf("GET /v1/users/{id} stats %v; want 4 hits, 4 misses", s)
	}
	if put := routeStats(t, g, "PUT", "/v1/users/{id}"); put.GetInvalidations() != 2 {
		t.Fatalf("PUT /v1/users/{id} stats %v; want 2 invalidations", put)
	}
	if u.count("GET_USER") != 4 {
		t.Fatalf("GET_USER ran %d times, want 4 (one per miss)", u.count("GET_USER"))
	}
}

// redisConfig returns cachingYAML with redis: set, or skips the test.
func redisConfig(t *testing.T) string {
	t.Helper()
	url := os.Getenv("STREAMGATE_TEST_REDIS")
	if url == "" {
		t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the gateway Redis tests")
	}
	return "redis: " + url + "\n" + cachingYAML
}

// cleanRedis deletes the generation keys of the users in ids at cleanup
// (the gateway uses the default prefix, shared by every gateway on the
// server, so each test uses ids of its own).
func cleanRedis(t *testing.T, ids ...string) {
	opts, err := redis.ParseURL(os.Getenv("STREAMGATE_TEST_REDIS"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, id := range ids {
			rdb.Del(ctx, "streamgate:gen:users|users|"+id)
		}
		_ = rdb.Close()
	})
}

func TestWriteThroughOneGatewayReadThroughAnother(t *testing.T) {
	t.Parallel()
	yaml := redisConfig(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:]) // tags of this test's own
	cleanRedis(t, id)
	u := startUsers(t)
	u.mu.Lock()
	u.names[id] = "Oska"
	u.mu.Unlock()
	_, a := startCachingGateway(t, yaml, u)
	_, bgw := startCachingGateway(t, yaml, u)
	client := httpClient(t, 4)
	alice := bearer(aliceKey)
	read := func(ts *httptest.Server, wantX, wantName string) {
		t.Helper()
		r := get(t, client, ts.URL+"/v1/users/"+id, alice...)
		if r.status != 200 || r.xCache() != wantX || r.result(t)["name"] != wantName {
			t.Fatalf("GET through %s: %d, X-Cache %q, %s; want %s and %s", ts.URL, r.status, r.xCache(), r.body, wantX, wantName)
		}
	}
	read(a, "miss", "Oska")
	read(bgw, "miss", "Oska")
	read(bgw, "hit", "Oska")

	if r := send(client, "PUT", a.URL+"/v1/users/"+id, `{"name":"Ryn"}`, alice...); r.status != 200 {
		t.Fatalf("PUT through A: %d %s %v", r.status, r.body, r.err)
	}
	// B never saw the write, but its entry is gone with it.
	read(bgw, "miss", "Ryn")
	read(bgw, "hit", "Ryn")
	read(a, "miss", "Ryn")
}

func TestReloadOntoRedisWhileServing(t *testing.T) {
	t.Parallel()
	yaml := redisConfig(t)
	u := startUsers(t)
	g, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if r := send(client, "GET", ts.URL+"/v1/users/1", "", bearer(aliceKey)...); r.err != nil || r.status != 200 {
					t.Errorf("GET during the reload: %d %s %v", r.status, r.body, r.err)
					return
				}
			}
		}()
	}
	// The cache moves to Redis generations (and back) under the requests.
	if err := g.Apply(parseConfig(t, yaml, map[string]*fakeService{"users": {Addr: u.addr}})); err != nil {
		t.Fatal(err)
	}
	if err := g.Apply(parseConfig(t, cachingYAML, map[string]*fakeService{"users": {Addr: u.addr}})); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// TestReadAfterWriteDoesNotJoinAnOlderRead: a read that starts after a
// write must not be answered by an identical read that started before it,
// neither at the gateway nor at the service (which coalesces too: the
// read's epoch keeps the two apart there).
func TestReadAfterWriteDoesNotJoinAnOlderRead(t *testing.T) {
	t.Parallel()
	u := startUsers(t)
	_, ts := startCachingGateway(t, "", u)
	client := httpClient(t, 4)
	alice := bearer(aliceKey)
	before := make(chan reply, 1)
	go func() { before <- get(t, client, ts.URL+"/v1/users/1/profile", alice...) }()
	u.waitStarted(t, 1)
	if r := send(client, "PUT", ts.URL+"/v1/users/1", `{"name":"Ryn"}`, alice...); r.err != nil || r.status != 200 {
		t.Fatalf("PUT: %d %s %v", r.status, r.body, r.err)
	}
	after := make(chan reply, 1)
	go func() { after <- get(t, client, ts.URL+"/v1/users/1/profile", alice...) }()
	u.waitStarted(t, 1) // a second run: the later read did not join the first
	u.open()
	if a, b := <-before, <-after; a.status != 200 || b.status != 200 || b.xCache() == "coalesced" {
		t.Fatalf("before %d %q, after %d %q", a.status, a.xCache(), b.status, b.xCache())
	}
	if n := u.count("PROFILE"); n != 2 {
		t.Fatalf("PROFILE ran %d times, want 2", n)
	}
}
