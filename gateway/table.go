package gateway

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
)

// table is one configuration in force: routes, authenticator and a client
// per service. Requests hold a reference while they run, so a reload can
// swap tables and close what the new one no longer uses only after the
// old one's requests are done.
type table struct {
	cfg     *config.Config
	auth    *auth.Authenticator
	clients map[string]*socket.Client // by service name

	refs    atomic.Int64
	retired atomic.Bool
	idle    chan struct{} // closed once retired and unreferenced
	once    sync.Once
}

// clientKey identifies a client: services with the same target and key
// share one across reloads.
type clientKey struct{ target, key string }

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
// whose target and key did not change. It returns the clients it dialed.
func (g *Gateway) build(cfg *config.Config) (*table, map[clientKey]*socket.Client, error) {
	a, err := auth.New(cfg.Auth)
	if err != nil {
		return nil, nil, err
	}
	t := &table{cfg: cfg, auth: a, clients: map[string]*socket.Client{}, idle: make(chan struct{})}
	dialed := map[clientKey]*socket.Client{}
	for name, svc := range cfg.Services {
		k := clientKey{svc.Target, svc.Key}
		c := g.clients[k]
		if c == nil {
			c = dialed[k]
		}
		if c == nil {
			c, err = socket.Dial(svc.Target, append([]socket.DialOption{socket.WithKey(svc.Key), socket.WithLogger(g.opts.logger)}, g.opts.dial...)...)
			if err != nil {
				for _, d := range dialed {
					_ = d.Close()
				}
				return nil, nil, err
			}
			dialed[k] = c
		}
		t.clients[name] = c
	}
	return t, dialed, nil
}

// swap puts a new configuration in force. Requests on the old table
// finish on it; clients only it used are closed after that.
func (g *Gateway) swap(cfg *config.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, target := range g.opts.targets {
		if svc := cfg.Services[name]; svc != nil {
			svc.Target = target
		}
	}
	t, dialed, err := g.build(cfg)
	if err != nil {
		return err
	}
	old := g.current.Swap(t)
	inUse := map[*socket.Client]bool{}
	for _, c := range t.clients {
		inUse[c] = true
	}
	next := map[clientKey]*socket.Client{}
	var stale []*socket.Client
	for k, c := range g.clients {
		if inUse[c] {
			next[k] = c
		} else {
			stale = append(stale, c)
		}
	}
	for k, c := range dialed {
		next[k] = c
	}
	g.clients = next
	if old == nil {
		return nil
	}
	old.retire()
	g.retiring.Add(1)
	go func() {
		defer g.retiring.Done()
		<-old.idle
		for _, c := range stale {
			_ = c.Close()
		}
	}()
	return nil
}

// closeTables waits for retired tables and closes every client.
func (g *Gateway) closeTables(ctx context.Context) {
	if t := g.current.Load(); t != nil {
		t.retire()
		select {
		case <-t.idle:
		case <-ctx.Done():
		}
	}
	g.retiring.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.clients {
		_ = c.Close()
	}
	g.clients = nil
}
