package caller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// instance is one resolved address of the service. Its loop keeps one
// stream open that takes new requests, replacing it with backoff when it
// breaks and at once when the service drains it.
type instance struct {
	c      *Client
	addr   string
	ctx    context.Context // ends when the instance is retired or the client closes
	cancel context.CancelFunc

	cur atomic.Pointer[clientStream] // the stream taking new requests; nil when none

	mu        sync.Mutex // guards state, lastErr, failed, everReady, retryAt
	state     connectivity.State
	lastErr   error
	failed    int       // failed attempts since the last ready stream
	everReady bool      // a stream was ready once
	retryAt   time.Time // when the next attempt starts, while in backoff
}

// conn is one gRPC connection to an instance. After a failed attempt the
// instance dials a fresh one, so that gRPC's own reconnect backoff never
// stacks under the instance's (which WithBackoff bounds).
type conn struct {
	cc      *grpc.ClientConn
	stub    socketv1.SocketServiceClient
	streams sync.WaitGroup // streams on cc still answering
}

// stop retires the instance: no new requests; the loop drains its stream
// and closes the connection.
func (inst *instance) stop() { inst.cancel() }

func (inst *instance) snapshot() instanceState {
	s := instanceState{Addr: inst.addr}
	inst.mu.Lock()
	s.State, s.LastError, s.Failures = inst.state, inst.lastErr, inst.failed
	inst.mu.Unlock()
	if st := inst.cur.Load(); st != nil {
		s.InFlight = int(st.inFlight.Load())
	}
	return s
}

func (inst *instance) setState(s connectivity.State, err error) {
	inst.mu.Lock()
	inst.state = s
	if err != nil {
		inst.lastErr = err
	}
	if s == connectivity.Ready {
		inst.failed, inst.everReady = 0, true
	}
	inst.mu.Unlock()
	inst.c.pool.notifyChange()
}

// backOff records a failure and waits the backoff delay before the next
// attempt; it reports false when the instance is retired meanwhile.
func (inst *instance) backOff(err error, failures int, attempt bool) bool {
	d := inst.c.cfg.backoff(failures)
	if err != nil && inst.ctx.Err() == nil {
		// The address and the cause are for operators, never clients.
		msg := "socket: stream to the service broke"
		if attempt {
			msg = "socket: cannot open a stream to the service"
		}
		cause := err // the transport's own error, with the dial error in it
		if u := errors.Unwrap(err); u != nil {
			cause = u
		}
		inst.c.cfg.logger.Warn(msg, "service", inst.c.catalogue.service(), "target", inst.c.pool.target, "addr", inst.addr, "failures", failures+1, "retry_in", d, "error", cause)
	}
	inst.mu.Lock()
	inst.state, inst.retryAt = connectivity.TransientFailure, time.Now().Add(d)
	if err != nil {
		inst.lastErr = err
	}
	if attempt {
		inst.failed++
	}
	inst.mu.Unlock()
	inst.c.pool.notifyChange()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-inst.ctx.Done():
		return false
	}
}

// readiness says whether the instance's first attempt is still under way
// and, when it is failing, when its next attempt starts.
func (inst *instance) readiness() (first bool, state connectivity.State, retryAt time.Time) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	return !inst.everReady && inst.failed == 0 && inst.state == connectivity.Connecting, inst.state, inst.retryAt
}

func (inst *instance) loop(cn *conn) {
	defer inst.c.wg.Done()
	defer func() {
		if cn != nil {
			inst.c.pool.retire(cn)
		}
	}()
	failures := 0
	for {
		if cn == nil {
			var err error
			if cn, err = inst.c.cfg.newConn(inst.addr); err != nil {
				if !inst.backOff(err, failures, true) {
					return
				}
				failures++
				continue
			}
		}
		inst.setState(connectivity.Connecting, nil)
		st, err := inst.open(cn)
		if err != nil {
			if inst.ctx.Err() != nil {
				return
			}
			inst.c.pool.retire(cn)
			cn = nil
			inst.c.pool.resolveNow()
			if !inst.backOff(err, failures, true) {
				return
			}
			failures++
			continue
		}
		inst.activate(st)
		inst.setState(connectivity.Ready, nil)
		opened := time.Now()
		inst.watch(cn, st)
		inst.cur.CompareAndSwap(st, nil)
		if inst.ctx.Err() != nil {
			inst.setState(connectivity.Shutdown, nil)
			return
		}
		if s := st.loadState(); s == streamDraining || s == streamDrained {
			failures = 0 // the service asked us to move: reconnect at once
			continue
		}
		// The stream broke: its connection is done for.
		inst.c.pool.retire(cn)
		cn = nil
		if time.Since(opened) > inst.c.cfg.backoffMax {
			failures = 0
		}
		if !inst.backOff(st.err(), failures, false) {
			return
		}
		failures++
	}
}

// watch returns when the stream drains, ends or the instance is retired.
// A stream that has been silent for a heartbeat interval is probed; one
// whose connection does not answer the probe is ended, so a black-holed
// connection fails within heartbeatInterval+heartbeatTimeout.
func (inst *instance) watch(cn *conn, st *clientStream) {
	beat := time.NewTicker(heartbeatInterval)
	defer beat.Stop()
	for {
		s, changed := st.observe()
		if s != streamOpen {
			return
		}
		select {
		case <-changed:
		case <-inst.ctx.Done():
			st.markDraining()
			return
		case <-beat.C:
			if st.heard.Swap(false) {
				continue
			}
			if err := probe(inst.ctx, cn); err != nil && inst.ctx.Err() == nil {
				st.cancel() // the receiver fails the stream's requests
				st.awaitEnd()
				return
			}
		}
	}
}
