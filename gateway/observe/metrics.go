package observe

import (
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamgate/streamgate/internal/promreg"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// routeUnmatched labels the requests that name no route of the table
// and carry no label of their own.
const (
	routeUnmatched = "unmatched" // no route: 404, 405, a bad path, a CORS preflight
)

// Metrics are a gateway's Prometheus collectors (README, "Metrics"), an
// observer of its requests.
type Metrics struct {
	gatherer      prometheus.Gatherer      // what /metrics serves; nil if reg is not one
	requests      *prometheus.CounterVec   // version, route, method, status
	duration      *prometheus.HistogramVec // version, route, method
	inFlight      prometheus.Gauge
	cache         *prometheus.CounterVec // version, route, outcome
	replays       *prometheus.CounterVec // version, route
	conflicts     *prometheus.CounterVec // version, route, reason
	steps         *prometheus.CounterVec // version, route, step, code
	compensations *prometheus.CounterVec // version, route, step, result
	shedTotal     *prometheus.CounterVec // version, route, code, reason
	sockets       socketMetrics

	reasons map[string]bool // the shed reasons counted by name; others count as other
	index   int             // the observer's index in the Observers
	NoObserver
}

// requestBuckets span a cache hit (tens of µs) to a slow pipeline.
var requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// NewMetrics registers the collectors with reg; a registry another
// gateway registered with shares its series. The shed counter names the
// reasons socket defines and the gateway's own reasons given; it counts
// the services' own reasons as other, to keep the label bounded.
func NewMetrics(reg prometheus.Registerer, reasons ...string) (*Metrics, error) {
	m := &Metrics{reasons: map[string]bool{"": true, socket.ReasonDraining: true, socket.ReasonNoReadyInstance: true, socket.ReasonOutcomeUnknown: true}}
	for _, reason := range reasons {
		m.reasons[reason] = true
	}
	m.gatherer, _ = reg.(prometheus.Gatherer)
	r := promreg.New(reg)
	m.requests = r.CounterVec("streamgate_gateway_requests_total",
		"REST requests answered, by API version, route template, method and HTTP status.", "version", "route", "method", "status")
	m.duration = promreg.Register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "streamgate_gateway_request_duration_seconds",
		Help:    "Time to answer a REST request, by API version, route template and method.",
		Buckets: requestBuckets,
	}, []string{"version", "route", "method"}))
	m.inFlight = r.Gauge("streamgate_gateway_requests_in_flight", "REST requests being served.")
	m.cache = r.CounterVec("streamgate_gateway_cache_requests_total",
		"Reads by how they were answered (X-Cache): hit, miss, coalesced, bypass or unavailable.", "version", "route", "outcome")
	m.replays = r.CounterVec("streamgate_gateway_idempotency_replays_total",
		"Requests answered with the stored answer of an earlier request with the same Idempotency-Key.", "version", "route")
	m.conflicts = r.CounterVec("streamgate_gateway_idempotency_conflicts_total",
		"Idempotency-Key requests refused: reason idempotency_key_in_use (409) or idempotency_key_reused (422).", "version", "route", "reason")
	m.steps = r.CounterVec("streamgate_gateway_pipeline_steps_total",
		"Pipeline steps run, by step name and code (OK for success).", "version", "route", "step", "code")
	m.compensations = r.CounterVec("streamgate_gateway_pipeline_compensations_total",
		"Undo actions a failed pipeline ran, by the step undone and result (ok or failed).", "version", "route", "step", "result")
	m.shedTotal = r.CounterVec("streamgate_gateway_shed_total",
		"Route answers that shed load: 429 RESOURCE_EXHAUSTED or 503 UNAVAILABLE, by code and reason.", "version", "route", "code", "reason")
	m.sockets.register(r)
	if err := r.Err(); err != nil {
		return nil, err
	}
	return m, nil
}

// routeMetrics are one route's series, looked up when its table is built
// so a request pays no label lookup.
type routeMetrics struct {
	m                      *Metrics
	version, route, method string
	duration               prometheus.Observer
	statuses               children[int] // the request counter by status
	cache                  [CacheUnavailable + 1]atomic.Pointer[prometheus.Counter]
	steps                  children[[2]string] // by step and code
	compensations          children[[2]string] // by step undone and result
	shed                   children[[2]string] // by code and reason
	replays                children[struct{}]
	conflicts              children[string] // by reason
}

// children are one route's series of a vector, by the labels that follow
// the route's, looked up on first use and then read without a lock.
type children[K comparable] struct {
	mu     sync.Mutex                               // serializes adding to series
	series atomic.Pointer[map[K]prometheus.Counter] // copy on write
}

// get returns the series of k, made by newSeries the first time.
func (c *children[K]) get(k K, newSeries func() prometheus.Counter) prometheus.Counter {
	if m := c.series.Load(); m != nil {
		if s, ok := (*m)[k]; ok {
			return s
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var next map[K]prometheus.Counter
	if old := c.series.Load(); old != nil {
		if s, ok := (*old)[k]; ok {
			return s
		}
		next = maps.Clone(*old)
	} else {
		next = map[K]prometheus.Counter{}
	}
	next[k] = newSeries()
	c.series.Store(&next)
	return next[k]
}

var _ Observer = (*Metrics)(nil)

func (m *Metrics) setIndex(i int) { m.index = i }

// Route makes a route's series.
func (m *Metrics) Route(ri *Route) any {
	rm := &routeMetrics{m: m, version: ri.Version, route: ri.Template, method: ri.Method}
	rm.duration = m.duration.WithLabelValues(rm.version, rm.route, rm.method)
	return rm
}

// of returns the series of a request's route; nil when it has none.
func (m *Metrics) of(r *Record) *routeMetrics {
	rm, _ := stateOf(r, m.index).(*routeMetrics)
	return rm
}

// Begin counts a REST request in flight.
func (m *Metrics) Begin(ctx context.Context, r *Record) context.Context {
	if r.Protocol == ProtocolHTTP {
		m.inFlight.Inc()
	}
	return ctx
}

// End records a REST request once it is answered: under its label when
// something other than the routes served it (gateway_service, demo),
// else under its route, else under unmatched.
func (m *Metrics) End(_ context.Context, r *Record) {
	if r.Protocol != ProtocolHTTP {
		return
	}
	d := time.Since(r.Start).Seconds()
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	var rm *routeMetrics
	if r.Label == "" {
		rm = m.of(r)
	}
	if rm != nil && r.Method == rm.method {
		rm.requests(status).Inc()
		rm.duration.Observe(d)
	} else {
		version, route := "", routeUnmatched
		switch {
		case rm != nil:
			version, route = rm.version, rm.route
		case r.Label != "":
			route = r.Label
		}
		method := methodLabel(r.Method)
		m.requests.WithLabelValues(version, route, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(version, route, method).Observe(d)
	}
	m.inFlight.Dec()
}

// requests is the route's request counter for a status.
func (rm *routeMetrics) requests(status int) prometheus.Counter {
	return rm.statuses.get(status, func() prometheus.Counter {
		return rm.m.requests.WithLabelValues(rm.version, rm.route, rm.method, strconv.Itoa(status))
	})
}

// methodLabel bounds the method label to the methods HTTP defines.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// Cached counts a read's outcome.
func (m *Metrics) Cached(r *Record, e CacheEvent) {
	rm := m.of(r)
	if rm == nil || e.Invalidation || int(e.Read) >= len(rm.cache) {
		return
	}
	c := rm.cache[e.Read].Load()
	if c == nil {
		counter := m.cache.WithLabelValues(rm.version, rm.route, e.Read.String())
		rm.cache[e.Read].CompareAndSwap(nil, &counter)
		c = rm.cache[e.Read].Load()
	}
	(*c).Inc()
}

// Idempotency counts an Idempotency-Key replay or refusal.
func (m *Metrics) Idempotency(r *Record, e IdempotencyOutcome) {
	rm := m.of(r)
	switch {
	case rm == nil:
	case e.Replayed:
		rm.replays.get(struct{}{}, func() prometheus.Counter { return m.replays.WithLabelValues(rm.version, rm.route) }).Inc()
	default:
		rm.conflicts.get(e.Conflict, func() prometheus.Counter {
			return m.conflicts.WithLabelValues(rm.version, rm.route, e.Conflict)
		}).Inc()
	}
}

// StepEnded counts a pipeline step's outcome, or an undo action's result.
func (m *Metrics) StepEnded(_ context.Context, r *Record, e StepOutcome) {
	rm := m.of(r)
	if rm == nil {
		return
	}
	if e.UndoOf != nil {
		result := "ok"
		if e.Err != nil {
			result = "failed"
		}
		rm.compensations.get([2]string{e.UndoOf.Name, result}, func() prometheus.Counter {
			return m.compensations.WithLabelValues(rm.version, rm.route, e.UndoOf.Name, result)
		}).Inc()
		return
	}
	code := codeOK
	if e.Err != nil {
		code = string(status.AsError(e.Err).Code)
	}
	rm.steps.get([2]string{e.Step.Name, code}, func() prometheus.Counter {
		return m.steps.WithLabelValues(rm.version, rm.route, e.Step.Name, code)
	}).Inc()
}

// Shed counts a route's answer that shed load.
func (m *Metrics) Shed(r *Record, err *status.Error) {
	rm := m.of(r)
	if rm == nil {
		return
	}
	reason, _ := err.Details[socket.DetailReason].(string)
	if !m.reasons[reason] {
		reason = "other" // the services' own reasons: keep the label bounded
	}
	rm.shed.get([2]string{string(err.Code), reason}, func() prometheus.Counter {
		return m.shedTotal.WithLabelValues(rm.version, rm.route, string(err.Code), reason)
	}).Inc()
}

// Handler serves the registry the metrics are registered with; 404 when
// it is no prometheus.Gatherer, or m is nil (metrics are off).
func (m *Metrics) Handler() http.Handler {
	if m == nil || m.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}
