// Package load drives an HTTP route on loopback with many connections for
// a while, closed loop or at a fixed rate, and reports requests per
// second, latency percentiles and errors by status. vegeta's attacker
// sends the requests; an HdrHistogram keeps the latencies.
//
//	rep, err := load.Run(ctx, load.Options{
//		Method: "GET", URL: "http://127.0.0.1:8080/v1/users/{id}", IDs: load.Range{From: 1, To: 1000},
//		Header: http.Header{"X-Api-Key": {key}}, Connections: 64, Duration: 10 * time.Second,
//	})
//	rep.WriteText(os.Stdout)
//
// At a fixed rate a request's latency counts from when it was due, not
// from when it went out, so a server that stalls is charged for every
// request that queued behind the stall (no coordinated omission).
package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
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

// maxRateWorkers bounds the requests in flight at a fixed rate (each
// waiting for one of the connections).
const maxRateWorkers = 10000

// errEnough ends an attack after MaxRequests.
var errEnough = errors.New("load: enough requests")

// Run sends the requests and returns what they got. It returns early,
// with what was measured, when ctx ends.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	// The attacker uses this client, so the connections it leaves idle
	// can be closed when the run ends.
	transport := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: o.Connections,
		MaxConnsPerHost:     o.Connections,
	}
	defer transport.CloseIdleConnections()
	atk, pacer := o.attacker(transport)
	c := &collector{o: o, rep: newReport(o), start: time.Now()}
	if o.Rate > 0 {
		c.interval = o.RatePer / time.Duration(o.Rate)
	}
	c.lastTick = c.start
	results := atk.Attack(o.targeter(), pacer, o.Duration, "")
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	done := ctx.Done()
	for {
		select {
		case res, ok := <-results:
			if !ok {
				c.rep.Elapsed = time.Since(c.start)
				return c.rep, nil
			}
			c.add(res)
		case now := <-tick.C:
			c.progress(now)
		case <-done:
			atk.Stop()
			done = nil // keep draining until the attacker closes results
		}
	}
}

// targeter makes the requests: the nth takes the nth id of o.IDs in its
// URL and body, until MaxRequests.
func (o Options) targeter() vegeta.Targeter {
	var sent atomic.Uint64
	urlParts := strings.Split(o.URL, IDPlaceholder)
	bodyParts := strings.Split(string(o.Body), IDPlaceholder)
	return func(t *vegeta.Target) error {
		n := sent.Add(1) - 1
		if o.MaxRequests > 0 && n >= uint64(o.MaxRequests) {
			return errEnough
		}
		id := strconv.FormatInt(o.IDs.nth(n), 10)
		t.Method = o.Method
		t.URL = strings.Join(urlParts, id)
		t.Header = o.Header
		if len(o.Body) > 0 {
			t.Body = []byte(strings.Join(bodyParts, id))
		}
		return nil
	}
}

// attacker is vegeta's attacker over transport, with o.Connections
// workers, and its pacer: as fast as the workers go, or o.Rate.
func (o Options) attacker(transport http.RoundTripper) (*vegeta.Attacker, vegeta.Pacer) {
	client := &http.Client{
		Transport: transport,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer like any other
		},
	}
	opts := []func(*vegeta.Attacker){
		vegeta.Client(client), vegeta.MaxBody(0),
		vegeta.Workers(uint64(o.Connections)), vegeta.MaxWorkers(uint64(o.Connections)),
	}
	pacer := vegeta.ConstantPacer{} // zero: as fast as the workers go
	if o.Rate > 0 {
		pacer = vegeta.ConstantPacer{Freq: o.Rate, Per: o.RatePer}
		opts = append(opts, vegeta.MaxWorkers(maxRateWorkers))
	}
	return vegeta.NewAttacker(opts...), pacer
}

// collector adds the attack's results to its report and tells
// o.Progress how it goes.
type collector struct {
	o        Options
	rep      *Report
	start    time.Time
	interval time.Duration // between two requests at a fixed rate; 0: closed loop

	lastCount int64     // rep.Requests at lastTick
	lastTick  time.Time // the last progress
}

// add counts one result; at a fixed rate its latency runs from when the
// request was due.
func (c *collector) add(res *vegeta.Result) {
	if res.Code == 0 && res.Error == errEnough.Error() {
		return
	}
	latency := res.Latency
	if c.interval > 0 {
		// The pacer sends request n at start + (n+1)·interval.
		due := c.start.Add(time.Duration(res.Seq+1) * c.interval)
		latency = max(latency, res.End().Sub(due))
	}
	c.rep.add(int(res.Code), res.Error, latency)
}

// progress reports the count and the rate since the last progress.
func (c *collector) progress(now time.Time) {
	if c.o.Progress != nil {
		c.o.Progress(Progress{
			Elapsed: now.Sub(c.start), Requests: c.rep.Requests, Errors: c.rep.Errors(),
			Rate: float64(c.rep.Requests-c.lastCount) / now.Sub(c.lastTick).Seconds(),
		})
	}
	c.lastCount, c.lastTick = c.rep.Requests, now
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
