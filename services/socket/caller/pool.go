package caller

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
)

// pool is a client's instances: one per address its target resolves to,
// kept in step with the resolver (this file), and the choice of a ready
// stream for each request (pick.go).
type pool struct {
	c      *Client                           // whose instances these are
	target string                            // what Dial was given
	born   time.Time                         // when Dial returned the client
	res    atomic.Pointer[resolver.Resolver] // nil for a fixed list of instances

	mu         sync.Mutex // guards instances, changed, resolveErr
	instances  map[string]*instance
	changed    chan struct{} // closed (and replaced) when an instance changes state
	resolveErr error

	picks  atomic.Pointer[[]*instance] // instances, for the request path
	rotate atomic.Uint32               // spreads ties between instances
}

// snapshots returns the state of every instance the target resolved to.
func (p *pool) snapshots() []instanceState {
	var out []instanceState
	for _, inst := range *p.picks.Load() {
		out = append(out, inst.snapshot())
	}
	return out
}

func (p *pool) lastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, inst := range p.instances {
		if s := inst.snapshot(); s.LastError != nil {
			return s.LastError
		}
	}
	return p.resolveErr
}

// notifyChange wakes requests waiting for a stream, to look again.
func (p *pool) notifyChange() {
	p.mu.Lock()
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// setAddrs starts instances for new addresses and retires those gone.
func (p *pool) setAddrs(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.c.ctx.Err() != nil {
		return
	}
	if len(addrs) == 0 {
		// An empty answer is more likely a resolver hiccup than a service
		// with no instances: keep what we have.
		return
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
		if p.instances[a] == nil {
			inst, err := p.newInstance(a)
			if err != nil {
				p.resolveErr = err
				continue
			}
			p.instances[a] = inst
		}
	}
	for a, inst := range p.instances {
		if !want[a] {
			delete(p.instances, a)
			inst.stop()
		}
	}
	list := make([]*instance, 0, len(p.instances))
	for _, inst := range p.instances {
		list = append(list, inst)
	}
	p.picks.Store(&list)
	p.resolveErr = nil
}

func (p *pool) setResolveErr(err error) {
	p.mu.Lock()
	p.resolveErr = err
	p.mu.Unlock()
	p.notifyChange()
}

// reresolve asks the resolver for fresh addresses from time to time, so
// new instances are found.
func (p *pool) reresolve() {
	defer p.c.wg.Done()
	t := time.NewTicker(resolveInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.resolveNow()
		case <-p.c.ctx.Done():
			return
		}
	}
}

// resolveNow asks the resolver to look again (an instance may have moved).
func (p *pool) resolveNow() {
	if res := p.res.Load(); res != nil {
		(*res).ResolveNow(resolver.ResolveNowOptions{})
	}
}

// retire closes a connection once its streams (a drained one may still
// answer) are over.
func (p *pool) retire(cn *conn) {
	p.c.wg.Add(1)
	go func() {
		defer p.c.wg.Done()
		cn.streams.Wait()
		_ = cn.cc.Close()
	}()
}

func (p *pool) newInstance(addr string) (*instance, error) {
	cn, err := p.c.cfg.newConn(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(p.c.ctx)
	inst := &instance{c: p.c, addr: addr, ctx: ctx, cancel: cancel, state: connectivity.Connecting}
	p.c.wg.Add(1)
	go inst.loop(cn)
	return inst, nil
}

// stop retires every instance and stops the resolver; the client's
// context has ended.
func (p *pool) stop() {
	p.mu.Lock()
	for _, inst := range p.instances {
		inst.stop()
	}
	p.mu.Unlock()
	if res := p.res.Load(); res != nil {
		(*res).Close()
	}
}
