package caller

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/connectivity"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
	"github.com/streamgate/streamgate/status"
)

// pick returns the ready stream with the fewest requests in flight,
// avoiding the instance of a failed attempt when another is ready. With no
// ready stream it waits while an instance's first connection attempt is
// under way, and otherwise at most WithReadyWait, then fails with
// UNAVAILABLE (reason no_ready_instance); never longer than ctx allows.
func (p *pool) pick(ctx context.Context, avoid *instance) (*clientStream, error) {
	var since time.Time // when this request first found no ready stream
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		// Take the change signal before looking, so a stream that becomes
		// ready meanwhile wakes us.
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		insts := *p.picks.Load()
		var best *clientStream
		n := len(insts)
		start := 0
		if n > 1 {
			start = int(p.rotate.Add(1)) % n
		}
		for pass := 0; pass < 2 && best == nil; pass++ {
			for i := range n {
				inst := insts[(start+i)%n]
				if pass == 0 && inst == avoid {
					continue
				}
				st := inst.cur.Load()
				if st == nil || !st.usable() {
					continue
				}
				if best == nil || st.inFlight.Load() < best.inFlight.Load() {
					best = st
				}
			}
		}
		if best != nil {
			return best, nil
		}
		if p.c.ctx.Err() != nil {
			return nil, errClientClosed
		}
		now := time.Now()
		if since.IsZero() {
			since = now
		}
		until, retryAfter := p.readyBy(insts, since, now)
		// Asked after readyBy: a refusal that ended an instance's attempt
		// while readyBy looked is seen here, and is never reported as "no
		// ready instance" instead.
		if err := p.permanentError(); err != nil {
			return nil, err
		}
		if !now.Before(until) {
			return nil, p.noReadyInstance(retryAfter)
		}
		if timer == nil {
			timer = time.NewTimer(until.Sub(now))
		} else {
			timer.Reset(until.Sub(now))
		}
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			// The cause (addresses, transport errors) is kept for logs and
			// errors.Is, not put in the message that may reach clients.
			e := status.AsError(ctx.Err())
			return nil, (&status.Error{Code: e.Code, Message: e.Message + ": " + p.c.catalogue.serviceName() + " has no ready instance"}).WithCause(errors.Join(ctx.Err(), p.lastError()))
		case <-p.c.ctx.Done():
			return nil, errClientClosed
		}
	}
}

// readyBy says until when a request that found no ready stream at since
// may wait for one: while an instance's first attempt is under way (or,
// before the target resolved to any address, within the connect timeout
// after Dial), as long as that takes; while a reconnect is under way or
// due within WithReadyWait, for WithReadyWait; not at all when every
// instance waits out a longer backoff. It also returns the retry hint: the
// time until the next reconnect attempt.
func (p *pool) readyBy(insts []*instance, since, now time.Time) (until time.Time, retryAfter time.Duration) {
	until = since
	retryAfter = p.c.cfg.backoffMax
	soon := since.Add(p.c.cfg.readyWait)
	if len(insts) == 0 {
		p.mu.Lock()
		resolveErr := p.resolveErr
		p.mu.Unlock()
		if resolveErr == nil {
			until = later(soon, p.born.Add(p.c.cfg.connectTimeout))
		}
	}
	for _, inst := range insts {
		first, state, retryAt := inst.readiness()
		switch {
		case first:
			// The attempt ends by the connect timeout and wakes us.
			until = later(until, now.Add(p.c.cfg.connectTimeout))
			retryAfter = 0
		case state == connectivity.TransientFailure:
			retryAfter = min(retryAfter, retryAt.Sub(now))
			if retryAt.Before(soon) {
				until = later(until, soon) // a reconnect is due meanwhile
			}
		default: // connecting again: the next attempt is now
			retryAfter = 0
			until = later(until, soon)
		}
	}
	floor := 100 * time.Millisecond
	return until, min(max(retryAfter, floor), max(p.c.cfg.backoffMax, floor))
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// noReadyInstance is the error of a request that found no ready stream.
func (p *pool) noReadyInstance(retryAfter time.Duration) *status.Error {
	return status.Errorf(status.CodeUnavailable, "%s has no ready instance", p.c.catalogue.serviceName()).
		WithDetails(map[string]any{wire.DetailReason: wire.ReasonNoReadyInstance, wire.DetailRetryAfterMs: retryAfter.Milliseconds()}).
		WithCause(p.lastError())
}

// permanentError returns an error that waiting will not cure: every
// instance refused the key.
func (p *pool) permanentError() error {
	insts := p.snapshots()
	if len(insts) == 0 {
		return nil
	}
	var err error
	for _, s := range insts {
		code := status.CodeOf(s.LastError)
		if s.State == connectivity.Ready || (code != status.CodeUnauthenticated && code != status.CodePermissionDenied) {
			return nil
		}
		err = s.LastError
	}
	return err
}
