// Package load drives an HTTP route on loopback with many connections for
// a while, closed loop or at a fixed rate, and reports requests per
// second, latency percentiles and errors by status. Its own lean
// HTTP/1.1 engine sends the requests (one goroutine per keep-alive
// connection, each request written in one write, answers read with a
// bufio.Reader and their bodies discarded); an HdrHistogram keeps the
// latencies.
//
//	rep, err := load.Run(ctx, load.Options{
//		Method: "GET", URL: "http://127.0.0.1:8080/v1/users/{id}", IDs: load.Range{From: 1, To: 1000},
//		Header: http.Header{"X-Api-Key": {key}}, Connections: 64, Duration: 10 * time.Second,
//	})
//	rep.WriteText(os.Stdout)
//
// At a fixed rate request n is due at start + n·interval and its latency
// counts from then, not from when it went out, so a server that stalls is
// charged for every request that queued behind the stall (no coordinated
// omission). The scheduler wakes at most every 200µs and releases every
// request then due to the connections free to send it.
package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options say what to load and how.
type Options struct {
	// Method is the HTTP method; default GET.
	Method string
	// URL is the target on loopback; each {id} is replaced by the
	// request's id from IDs.
	URL string
	// IDs are the ids requests take in turn; default 1-1.
	IDs Range
	// Header is sent with every request.
	Header http.Header
	// Body is sent with every request; each {id} in it is replaced too.
	Body []byte
	// Connections is how many connections (and, closed loop, requests
	// in flight) at most; default 1.
	Connections int
	// Duration is how long to send; required.
	Duration time.Duration
	// Rate is requests per RatePer (default a second) when > 0, sent on
	// schedule whatever the answers take (open loop); 0 means closed
	// loop: each connection sends its next request when the answer
	// arrives.
	Rate    int
	RatePer time.Duration
	// MaxRequests stops after that many requests when > 0.
	MaxRequests int64
	// Timeout bounds each request; default 30s.
	Timeout time.Duration
	// Progress, if set, is called about once a second while running.
	Progress func(Progress)
}

// Progress is a running count, for a live progress line.
type Progress struct {
	Elapsed  time.Duration
	Requests int64
	Errors   int64
	// Rate is the requests per second over the last interval.
	Rate float64
}

// maxWaiting bounds the requests that are due at a fixed rate but wait
// for a free connection; while that many wait, later ones are released
// late (still counted from when they were due).
const maxWaiting = 10000

// schedulerTick is the shortest sleep of the fixed rate's scheduler: it
// wakes at most that often and releases every request then due, so a
// high rate costs no timer per request.
const schedulerTick = 200 * time.Microsecond

// run is one Run: its workers, one per connection, take requests in turn
// (closed loop) or as the scheduler releases them (fixed rate) and count
// what they got in rep.
type run struct {
	ctx      context.Context
	o        Options
	text     *requestText
	addr     string      // host:port dialled
	tls      *tls.Config // nil: plain HTTP
	head     bool        // the method is HEAD: answers have no body
	start    time.Time
	end      time.Time     // closed loop: no request starts after it
	interval time.Duration // between two requests at a fixed rate; 0: closed loop
	stopped  atomic.Bool   // ctx ended: no request starts any more
	taken    atomic.Uint64 // closed loop: requests taken by the workers

	mu  sync.Mutex // guards rep
	rep *Report
}

// Run sends the requests and returns what they got. It returns early,
// with what was measured, when ctx ends; a request that ctx's end
// interrupted is not counted.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	text, host, err := newRequestText(o)
	if err != nil {
		return nil, err
	}
	r := &run{ctx: ctx, o: o, text: text, head: o.Method == http.MethodHead, rep: newReport(o)}
	r.addr, r.tls = dialAddress(o.URL, host)
	stopWatch := context.AfterFunc(ctx, func() { r.stopped.Store(true) })
	defer stopWatch()

	r.start = time.Now()
	r.end = r.start.Add(o.Duration)
	var workers sync.WaitGroup
	next := r.nextClosedLoop
	if o.Rate > 0 {
		r.interval = o.RatePer / time.Duration(o.Rate)
		due := make(chan uint64, maxWaiting)
		workers.Go(func() { r.schedule(due) })
		next = func() (uint64, time.Time, bool) { return r.nextAtRate(due) }
	}
	for range o.Connections {
		workers.Go(func() { r.work(next) })
	}
	finished := make(chan struct{})
	go func() {
		workers.Wait()
		close(finished)
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastCount, lastTick := int64(0), r.start
	for {
		select {
		case <-finished:
			r.rep.Elapsed = time.Since(r.start)
			return r.rep, nil
		case now := <-tick.C:
			r.mu.Lock()
			p := Progress{
				Elapsed: now.Sub(r.start), Requests: r.rep.Requests, Errors: r.rep.Errors(),
				Rate: float64(r.rep.Requests-lastCount) / now.Sub(lastTick).Seconds(),
			}
			r.mu.Unlock()
			if o.Progress != nil {
				o.Progress(p)
			}
			lastCount, lastTick = p.Requests, now
		}
	}
}

// dialAddress is the host:port to dial for rawURL (whose host is host),
// and the TLS configuration for https.
func dialAddress(rawURL, host string) (string, *tls.Config) {
	name, port, err := net.SplitHostPort(host)
	if err != nil { // no port
		name, port = strings.Trim(host, "[]"), "80"
		if strings.HasPrefix(rawURL, "https://") {
			port = "443"
		}
	}
	if !strings.HasPrefix(rawURL, "https://") {
		return net.JoinHostPort(name, port), nil
	}
	return net.JoinHostPort(name, port), &tls.Config{ServerName: name, NextProtos: []string{"http/1.1"}}
}

// work sends the requests next gives on one connection until next says
// there are no more, counting each answer.
func (r *run) work(next func() (n uint64, due time.Time, ok bool)) {
	c := &conn{r: r}
	defer c.close()
	for {
		n, due, ok := next()
		if !ok {
			return
		}
		sent := due
		if r.interval > 0 {
			sent = time.Now()
		}
		status, err := c.do(n, sent)
		end := time.Now()
		if err != nil && r.ctx.Err() != nil {
			return // interrupted by ctx's end (set before it closes the connections): not an answer
		}
		r.mu.Lock()
		if err != nil {
			r.rep.add(0, r.o.Method+" "+target(r.o.URL, r.o.IDs.nth(n))+": "+err.Error(), end.Sub(due))
		} else {
			r.rep.add(status, "", end.Sub(due))
		}
		r.mu.Unlock()
	}
}

// nextClosedLoop gives the next request number while the duration lasts,
// due now.
func (r *run) nextClosedLoop() (uint64, time.Time, bool) {
	now := time.Now()
	if r.stopped.Load() || !now.Before(r.end) {
		return 0, now, false
	}
	n := r.taken.Add(1) - 1
	if r.o.MaxRequests > 0 && n >= uint64(r.o.MaxRequests) {
		return 0, now, false
	}
	return n, now, true
}

// nextAtRate gives the next request the scheduler released, and when it
// was due.
func (r *run) nextAtRate(due <-chan uint64) (uint64, time.Time, bool) {
	n, ok := <-due
	if !ok || r.stopped.Load() {
		return 0, time.Time{}, false
	}
	return n, r.start.Add(time.Duration(n) * r.interval), true
}

// schedule releases request n at start + n·interval, those due within
// the duration (at most MaxRequests), waking at most every schedulerTick
// and releasing all that are due then; it closes due when done or when
// ctx ends.
func (r *run) schedule(due chan<- uint64) {
	defer close(due)
	total := uint64((r.o.Duration + r.interval - 1) / r.interval)
	if r.o.MaxRequests > 0 {
		total = min(total, uint64(r.o.MaxRequests))
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	done := r.ctx.Done()
	for n := uint64(0); n < total; {
		select {
		case <-timer.C:
		case <-done:
			return
		}
		upTo := min(uint64(time.Since(r.start)/r.interval)+1, total)
		for ; n < upTo; n++ {
			select {
			case due <- n:
			case <-done:
				return
			}
		}
		wait := time.Until(r.start.Add(time.Duration(n) * r.interval))
		timer.Reset(max(wait, schedulerTick))
	}
}

// fill checks the options and sets defaults.
func (o *Options) fill() error {
	if o.Method == "" {
		o.Method = http.MethodGet
	}
	if o.URL == "" {
		return errors.New("load: no URL")
	}
	if err := checkLoopback(o.URL); err != nil {
		return err
	}
	if o.IDs == (Range{}) {
		o.IDs = Range{From: 1, To: 1}
	}
	if o.IDs.To < o.IDs.From {
		return fmt.Errorf("load: ids %s: TO is less than FROM", o.IDs)
	}
	if o.Connections <= 0 {
		o.Connections = 1
	}
	if o.Duration <= 0 {
		return errors.New("load: the duration must be positive")
	}
	if o.Rate < 0 {
		return errors.New("load: the rate must not be negative")
	}
	if o.RatePer <= 0 {
		o.RatePer = time.Second
	}
	if o.Rate > 0 && o.RatePer/time.Duration(o.Rate) <= 0 {
		return errors.New("load: the rate is more than one request a nanosecond")
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return nil
}
