package gateway

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
)

// table is one configuration in force: routes, authenticator and a client
// per service. Requests hold a reference while they run, so a reload can
// swap tables and close what no table uses any more only after the
// requests using it are done.
type table struct {
	cfg     *config.Config
	auth    *auth.Authenticator
	clients map[string]*socket.Client // by service name
	logger  *slog.Logger
	idem    idempotency.Store // Idempotency-Key leases and answers

	refs    atomic.Int64
	retired atomic.Bool
	idle    chan struct{} // closed once retired and unreferenced
	once    sync.Once

	catalogues sync.Map                    // version → catalogue, for the OpenAPI documents
	actions    sync.Map                    // version → []actionroute.Route, for the socket's action form
	routes     map[routeKey]*observe.Route // what observers know of each route; read-only
}

// routeKey names a route of one table: a version may share its routes
// with the versions that extend it.
type routeKey struct {
	version  *config.Version
	resource *config.Resource
	route    *config.Route
}

// routesFor makes what the observers know of every route of a
// configuration.
func routesFor(obs observe.Observers, cfg *config.Config) map[routeKey]*observe.Route {
	out := map[routeKey]*observe.Route{}
	for _, v := range cfg.Versions {
		for _, res := range v.Resources {
			for _, rt := range res.Routes {
				ri := observe.Route{Version: v.Name, Template: routePath(v.Name, res.Name, rt), Method: rt.Method, Actions: routeActions(rt)}
				if len(rt.Pipeline) == 0 {
					ri.Service, ri.Action = rt.Service, rt.Action
				}
				out[routeKey{v, res, rt}] = obs.NewRoute(ri)
			}
		}
	}
	return out
}

// routeActions names what a route runs: service.ACTION, comma-separated
// for a pipeline's steps.
func routeActions(rt *config.Route) string {
	if len(rt.Pipeline) == 0 {
		return rt.Service + "." + rt.Action
	}
	s := ""
	for _, st := range rt.Pipeline {
		for _, x := range append([]*config.Step{st}, st.Parallel...) {
			if x.Action != "" {
				if s != "" {
					s += ","
				}
				s += x.Service + "." + x.Action
			}
		}
	}
	return s
}

// routeInfo returns what the observers know of a resolved route.
func (t *table) routeInfo(r resolved) *observe.Route {
	return t.routes[routeKey{r.version, r.resource, r.route}]
}

// clientKey identifies a client: services with the same target, key and
// TLS files share one across reloads.
type clientKey struct{ target, key, tls string }

// redisState is the Redis server whose generations the cache uses.
type redisState struct {
	key  redisKey
	gens *cache.RedisGenerations
}

// redisKey is what a Redis client is made of: a reload that changes any
// of it makes a new client.
type redisKey struct {
	url          string
	timeout, ttl time.Duration
}

// String names the key in the maps of Idempotency-Key stores.
func (k redisKey) String() string { return k.url + " " + k.timeout.String() + " " + k.ttl.String() }

// redisKeyOf is the configuration's Redis client key (ttl only for the
// cache's generations).
func redisKeyOf(cfg *config.Config, gens bool) redisKey {
	k := redisKey{url: cfg.Redis, timeout: cfg.RedisTimeout}
	if gens {
		k.ttl = cfg.RedisGenerationTTL
	}
	return k
}

// acquire returns the table in force with a reference held.
func (g *Gateway) acquire() *table {
	for {
		t := g.current.Load()
		t.refs.Add(1)
		if g.current.Load() == t {
			return t
		}
		t.release() // swapped meanwhile: take the new one
	}
}

func (t *table) release() {
	if t.refs.Add(-1) == 0 && t.retired.Load() {
		t.once.Do(func() { close(t.idle) })
	}
}

// retire marks a table replaced; idle closes when its last request ends.
func (t *table) retire() {
	t.retired.Store(true)
	if t.refs.Load() == 0 {
		t.once.Do(func() { close(t.idle) })
	}
}

// build makes a table for a configuration, reusing the gateway's clients
// whose target and key did not change. Callers hold g.mu.
func (g *Gateway) build(cfg *config.Config) (*table, error) {
	a, err := auth.New(cfg.Auth)
	if err != nil {
		return nil, err
	}
	t := &table{cfg: cfg, auth: a, clients: map[string]*socket.Client{}, idle: make(chan struct{}), logger: g.opts.logger, routes: routesFor(g.obs, cfg)}
	var dialed []*socket.Client
	for name, svc := range cfg.Services {
		link, err := g.linkTLS(cfg, svc)
		if err != nil {
			for _, d := range dialed {
				_ = d.Close()
				delete(g.clients, clientKeyOf(g.clients, d))
			}
			return nil, err
		}
		k := clientKey{svc.Target, svc.Key, linkID(link)}
		c := g.clients[k]
		if c == nil {
			opts := append([]socket.DialOption{socket.WithKey(svc.Key), socket.WithServiceName(name), socket.WithLogger(g.opts.logger), socket.WithoutClientCoalescing()}, linkDial(link, svc.Target)...)
			c, err = socket.Dial(svc.Target, append(opts, g.opts.dial...)...)
			if err != nil {
				for _, d := range dialed {
					_ = d.Close()
					delete(g.clients, clientKeyOf(g.clients, d))
				}
				return nil, err
			}
			g.clients[k] = c
			dialed = append(dialed, c)
			g.watchForCache(c)
		}
		t.clients[name] = c
	}
	return t, nil
}

func clientKeyOf(m map[clientKey]*socket.Client, c *socket.Client) clientKey {
	for k, v := range m {
		if v == c {
			return k
		}
	}
	return clientKey{}
}

// useRedis points the cache at the configuration's Redis server (or back
// at in-process generations). Callers hold g.mu.
func (g *Gateway) useRedis(cfg *config.Config) error {
	key := redisKeyOf(cfg, true)
	if g.cache == nil || (g.redis == nil && key.url == "") || (g.redis != nil && g.redis.key == key) {
		return nil
	}
	var next *redisState
	if key.url != "" {
		gens, err := cache.NewRedisGenerations(key.url, "", cache.WithRedisTimeout(key.timeout), cache.WithGenerationTTL(key.ttl))
		if err != nil {
			return err
		}
		next = &redisState{key: key, gens: gens}
		g.cache.SetGenerations(gens)
	} else {
		g.cache.SetGenerations(cache.NewLocalGenerations())
	}
	if g.redis != nil {
		_ = g.redis.gens.Close()
	}
	g.redis = next
	return nil
}

// swap puts a new configuration in force. Requests on older tables finish
// on them; a client is closed when the last table using it is done.
func (g *Gateway) swap(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, target := range g.opts.targets {
		if svc := cfg.Services[name]; svc != nil {
			svc.Target = target
		}
	}
	t, err := g.build(cfg)
	if err != nil {
		return err
	}
	if err := g.useRedis(cfg); err != nil {
		return err
	}
	t.idem = g.idempotencyStore(cfg)
	if r, ok := t.idem.(*idempotency.Redis); ok {
		g.idemRefs[r]++
	}
	for _, c := range uniqueClients(t) {
		g.clientRefs[c]++
	}
	old := g.current.Swap(t)
	g.hub.rebind(t)
	if old == nil {
		return nil
	}
	g.invalidateMoved(old, t)
	old.retire()
	g.retiring.Add(1)
	go func() {
		defer g.retiring.Done()
		<-old.idle
		g.mu.Lock()
		defer g.mu.Unlock()
		g.unref(old)
	}()
	return nil
}

// unref drops a finished table's claim on its clients, closing those no
// table uses. Callers hold g.mu.
func (g *Gateway) unref(t *table) {
	for _, c := range uniqueClients(t) {
		if g.clientRefs[c]--; g.clientRefs[c] <= 0 {
			delete(g.clientRefs, c)
			delete(g.clients, clientKeyOf(g.clients, c))
			_ = c.Close()
		}
	}
	if r, ok := t.idem.(*idempotency.Redis); ok {
		if g.idemRefs[r]--; g.idemRefs[r] <= 0 {
			delete(g.idemRefs, r)
			for key, s := range g.idemRedis {
				if s == r {
					delete(g.idemRedis, key)
				}
			}
			_ = r.Close()
		}
	}
}

// idempotencyStore is the Idempotency-Key store for a configuration: the
// option's, the configuration's Redis, or the process's memory (bounded by
// the first configuration's http.idempotency). Callers hold g.mu.
func (g *Gateway) idempotencyStore(cfg *config.Config) idempotency.Store {
	if g.opts.idem != nil {
		return g.opts.idem
	}
	if cfg.Redis != "" {
		key := redisKeyOf(cfg, false).String()
		if r := g.idemRedis[key]; r != nil {
			return r
		}
		r, err := idempotency.NewRedis(cfg.Redis, "", idempotency.WithTimeout(cfg.RedisTimeout))
		if err == nil {
			g.idemRedis[key] = r
			return r
		}
		// The URL was checked when the configuration loaded.
		g.opts.logger.Error("gateway: idempotency store: bad Redis URL; using memory", "err", err)
	}
	if g.idemMemory == nil {
		b := cfg.HTTP.Idempotency
		g.idemMemory = idempotency.NewMemory(b.MaxEntries, b.MaxBytes)
	}
	return g.idemMemory
}

func uniqueClients(t *table) []*socket.Client {
	seen := map[*socket.Client]bool{}
	var out []*socket.Client
	for _, c := range t.clients {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// closeTables waits (until ctx ends) for the requests of every table, then
// closes every client and the Redis connection.
func (g *Gateway) closeTables(ctx context.Context) {
	if t := g.current.Load(); t != nil {
		t.retire()
		select {
		case <-t.idle:
		case <-ctx.Done():
		}
	}
	retired := make(chan struct{})
	go func() { g.retiring.Wait(); close(retired) }()
	select {
	case <-retired:
	case <-ctx.Done():
	}
	g.hub.close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.clients {
		_ = c.Close()
	}
	g.clients = map[clientKey]*socket.Client{}
	g.clientRefs = map[*socket.Client]int{}
	if g.redis != nil {
		_ = g.redis.gens.Close()
		g.redis = nil
	}
	for _, r := range g.idemRedis {
		_ = r.Close()
	}
	g.idemRedis, g.idemRefs = map[string]*idempotency.Redis{}, map[*idempotency.Redis]int{}
	if g.idemMemory != nil {
		g.idemMemory.Close()
		g.idemMemory = nil
	}
	if g.cache != nil {
		g.cache.Close()
	}
}
