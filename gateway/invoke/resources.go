package invoke

import (
	"sync"
	"time"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/cache"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/idempotency"
	"github.com/streamgate/streamgate/gateway/natsconns"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// resources are what the tables in force or draining use: the service
// clients (shared by tables whose service has the same target, key and
// TLS), the Redis generations of the cache and the Idempotency-Key
// stores. A client, a store or a Redis connection is closed when no table
// uses it any more.
type resources struct {
	opts   Options
	writes *invalidator // subscribes each new client for the cache

	mu         sync.Mutex // guards clients, clientRefs, redis, idemMemory, idemRedis, idemRefs and serializes swaps
	clients    map[clientKey]*caller.Client
	clientRefs map[*caller.Client]int        // tables (in force or draining) using each client
	redis      *redisState                   // the Redis generations in use, if any
	retiring   sync.WaitGroup                // goroutines closing the clients of replaced tables
	idemMemory *idempotency.Memory           // the in-process Idempotency-Key store, made on first use
	idemRedis  map[string]*idempotency.Redis // Idempotency-Key stores by Redis URL
	idemRefs   map[*idempotency.Redis]int    // tables (in force or draining) using each
	nats       natsconns.Conns               // the connections of the clients on NATS
}

func newResources(o Options, writes *invalidator) *resources {
	return &resources{
		opts:       o,
		writes:     writes,
		clients:    map[clientKey]*caller.Client{},
		clientRefs: map[*caller.Client]int{},
		idemRedis:  map[string]*idempotency.Redis{},
		idemRefs:   map[*idempotency.Redis]int{},
	}
}

// clientKey identifies a client: services with the same target, key and
// TLS files (or NATS server) share one across reloads.
type clientKey struct{ target, key, tls, nats string }

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

// build makes a table for a configuration, reusing the clients
// whose target and key did not change. Callers hold rs.mu.
func (rs *resources) build(cfg *config.Config) (*Table, error) {
	a, err := auth.New(cfg.Auth)
	if err != nil {
		return nil, err
	}
	t := &Table{cfg: cfg, auth: a, clients: map[string]*caller.Client{}, idle: make(chan struct{}), logger: rs.opts.Logger, routes: routesFor(rs.opts.Observers, cfg)}
	var dialed []*caller.Client
	undo := func() {
		for _, d := range dialed {
			_ = d.Close()
			k := clientKeyOf(rs.clients, d)
			rs.nats.Release(k.nats)
			delete(rs.clients, k)
		}
	}
	for name, svc := range cfg.Services {
		k, dial, err := rs.clientKey(cfg, svc)
		if err != nil {
			undo()
			return nil, err
		}
		c := rs.clients[k]
		if c == nil {
			if c, err = rs.dial(name, svc, k, dial); err != nil {
				undo()
				return nil, err
			}
			rs.clients[k] = c
			dialed = append(dialed, c)
			rs.writes.watchForCache(c)
		}
		t.clients[name] = c
	}
	return t, nil
}

// clientKey is the key of svc's client and, for a stream, its link's dial
// options.
func (rs *resources) clientKey(cfg *config.Config, svc *config.Service) (clientKey, []caller.Option, error) {
	if svc.Transport == config.TransportNATS {
		return clientKey{target: svc.Target, key: svc.Key, nats: svc.NATSURL}, nil, rs.natsLink(cfg, svc)
	}
	link, dial, err := rs.link(cfg, svc)
	return clientKey{target: svc.Target, key: svc.Key, tls: link}, dial, err
}

// dial makes the client of the service called name; a client on NATS
// takes a claim on its connection.
func (rs *resources) dial(name string, svc *config.Service, k clientKey, linkOpts []caller.Option) (*caller.Client, error) {
	opts := append([]caller.Option{caller.WithKey(svc.Key), caller.WithServiceName(name), caller.WithLogger(rs.opts.Logger), caller.WithoutCoalescing()}, linkOpts...)
	if k.nats != "" {
		nc, err := rs.nats.Acquire(k.nats, "streamgate gateway")
		if err != nil {
			return nil, err
		}
		opts = append(opts, caller.WithNATS(nc))
	}
	c, err := caller.Dial(svc.Target, append(opts, rs.opts.Dial...)...)
	if err != nil {
		rs.nats.Release(k.nats)
	}
	return c, err
}

func clientKeyOf(m map[clientKey]*caller.Client, c *caller.Client) clientKey {
	for k, v := range m {
		if v == c {
			return k
		}
	}
	return clientKey{}
}

// useRedis points the cache at the configuration's Redis server (or back
// at in-process generations). Callers hold rs.mu.
func (rs *resources) useRedis(cfg *config.Config) error {
	key := redisKeyOf(cfg, true)
	if rs.opts.Cache == nil || (rs.redis == nil && key.url == "") || (rs.redis != nil && rs.redis.key == key) {
		return nil
	}
	var next *redisState
	if key.url != "" {
		gens, err := cache.NewRedisGenerations(key.url, "", cache.WithRedisTimeout(key.timeout), cache.WithGenerationTTL(key.ttl))
		if err != nil {
			return err
		}
		next = &redisState{key: key, gens: gens}
		rs.opts.Cache.SetGenerations(gens)
	} else {
		rs.opts.Cache.SetGenerations(cache.NewLocalGenerations())
	}
	if rs.redis != nil {
		_ = rs.redis.gens.Close()
	}
	rs.redis = next
	return nil
}

// unref drops a finished table's claim on its clients, closing those no
// table uses. Callers hold rs.mu.
func (rs *resources) unref(t *Table) {
	for _, c := range uniqueClients(t) {
		if rs.clientRefs[c]--; rs.clientRefs[c] <= 0 {
			delete(rs.clientRefs, c)
			k := clientKeyOf(rs.clients, c)
			delete(rs.clients, k)
			_ = c.Close()
			rs.nats.Release(k.nats)
		}
	}
	if r, ok := t.idem.(*idempotency.Redis); ok {
		if rs.idemRefs[r]--; rs.idemRefs[r] <= 0 {
			delete(rs.idemRefs, r)
			for key, s := range rs.idemRedis {
				if s == r {
					delete(rs.idemRedis, key)
				}
			}
			_ = r.Close()
		}
	}
}

// idempotencyStore is the Idempotency-Key store for a configuration: the
// option's, the configuration's Redis, or the process's memory (bounded by
// the first configuration's http.idempotency). Callers hold rs.mu.
func (rs *resources) idempotencyStore(cfg *config.Config) idempotency.Store {
	if rs.opts.Idempotency != nil {
		return rs.opts.Idempotency
	}
	if cfg.Redis != "" {
		key := redisKeyOf(cfg, false).String()
		if r := rs.idemRedis[key]; r != nil {
			return r
		}
		r, err := idempotency.NewRedis(cfg.Redis, "", idempotency.WithTimeout(cfg.RedisTimeout))
		if err == nil {
			rs.idemRedis[key] = r
			return r
		}
		// The URL was checked when the configuration loaded.
		rs.opts.Logger.Error("gateway: idempotency store: bad Redis URL; using memory", "err", err)
	}
	if rs.idemMemory == nil {
		b := cfg.HTTP.Idempotency
		rs.idemMemory = idempotency.NewMemory(b.MaxEntries, b.MaxBytes)
	}
	return rs.idemMemory
}

func uniqueClients(t *Table) []*caller.Client {
	seen := map[*caller.Client]bool{}
	var out []*caller.Client
	for _, c := range t.clients {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// closeAll closes every client, the Redis connections, the stores and
// the cache.
func (rs *resources) closeAll() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, c := range rs.clients {
		_ = c.Close()
	}
	rs.clients = map[clientKey]*caller.Client{}
	rs.clientRefs = map[*caller.Client]int{}
	rs.nats.CloseAll()
	if rs.redis != nil {
		_ = rs.redis.gens.Close()
		rs.redis = nil
	}
	for _, r := range rs.idemRedis {
		_ = r.Close()
	}
	rs.idemRedis, rs.idemRefs = map[string]*idempotency.Redis{}, map[*idempotency.Redis]int{}
	if rs.idemMemory != nil {
		rs.idemMemory.Close()
		rs.idemMemory = nil
	}
	if rs.opts.Cache != nil {
		rs.opts.Cache.Close()
	}
}
