package gateway

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamgate/streamgate/services/socket"
)

// WithMetrics registers the gateway's Prometheus metrics with reg (see
// README, "Metrics"); when reg is also a prometheus.Gatherer (a
// *prometheus.Registry), Run's admin listener serves it at /metrics.
// Gateways registered with one reg share their series. Default: no
// metrics.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.metrics = reg }
}

// Route labels of requests that name no route of the table.
const (
	routeUnmatched      = "unmatched"       // no route: 404, 405, a bad path, a CORS preflight
	routeGatewayService = "gateway_service" // GatewayService's REST binding under /gateway/
)

// gatewayMetrics are a gateway's collectors, an observer of its requests;
// nil when metrics are off.
type gatewayMetrics struct {
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

	index int // the observer's index in the gateway's observers
	noObserver
}

// requestBuckets span a cache hit (tens of µs) to a slow pipeline.
var requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// newGatewayMetrics registers the collectors with reg (nil: none).
func newGatewayMetrics(reg prometheus.Registerer) (*gatewayMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &gatewayMetrics{}
	m.gatherer, _ = reg.(prometheus.Gatherer)
	var err error
	register := func(c prometheus.Collector) prometheus.Collector {
		if rerr := reg.Register(c); rerr != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(rerr, &dup) {
				return dup.ExistingCollector // another gateway on the same registry
			}
			err = errors.Join(err, rerr)
		}
		return c
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return register(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)).(*prometheus.CounterVec)
	}
	m.requests = counter("streamgate_gateway_requests_total",
		"REST requests answered, by API version, route template, method and HTTP status.", "version", "route", "method", "status")
	m.duration = register(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "streamgate_gateway_request_duration_seconds",
		Help:    "Time to answer a REST request, by API version, route template and method.",
		Buckets: requestBuckets,
	}, []string{"version", "route", "method"})).(*prometheus.HistogramVec)
	m.inFlight = register(prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "streamgate_gateway_requests_in_flight",
		Help: "REST requests being served.",
	})).(prometheus.Gauge)
	m.cache = counter("streamgate_gateway_cache_requests_total",
		"Reads by how they were answered (X-Cache): hit, miss, coalesced, bypass or unavailable.", "version", "route", "outcome")
	m.replays = counter("streamgate_gateway_idempotency_replays_total",
		"Requests answered with the stored answer of an earlier request with the same Idempotency-Key.", "version", "route")
	m.conflicts = counter("streamgate_gateway_idempotency_conflicts_total",
		"Idempotency-Key requests refused: reason idempotency_key_in_use (409) or idempotency_key_reused (422).", "version", "route", "reason")
	m.steps = counter("streamgate_gateway_pipeline_steps_total",
		"Pipeline steps run, by step name and code (OK for success).", "version", "route", "step", "code")
	m.compensations = counter("streamgate_gateway_pipeline_compensations_total",
		"Undo actions a failed pipeline ran, by the step undone and result (ok or failed).", "version", "route", "step", "result")
	m.shedTotal = counter("streamgate_gateway_shed_total",
		"Route answers that shed load: 429 RESOURCE_EXHAUSTED or 503 UNAVAILABLE, by code and reason.", "version", "route", "code", "reason")
	m.sockets.register(register, counter)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// routeMetrics are one route's series, looked up when its table is built
// so a request pays no label lookup.
type routeMetrics struct {
	m                      *gatewayMetrics
	version, route, method string
	duration               prometheus.Observer
	mu                     sync.Mutex                                 // serializes adding to statuses
	statuses               atomic.Pointer[map[int]prometheus.Counter] // copy on write
	cache                  [outcomeUnavailable + 1]atomic.Pointer[prometheus.Counter]
}

var _ observer = (*gatewayMetrics)(nil)

// route makes a route's series.
func (m *gatewayMetrics) route(ri *routeInfo) any {
	rm := &routeMetrics{m: m, version: ri.version, route: ri.template, method: ri.method}
	rm.duration = m.duration.WithLabelValues(rm.version, rm.route, rm.method)
	rm.statuses.Store(&map[int]prometheus.Counter{})
	return rm
}

// of returns the series of a request's route; nil when it has none.
func (m *gatewayMetrics) of(r *request) *routeMetrics {
	if r.route == nil {
		return nil
	}
	rm, _ := r.route.state[m.index].(*routeMetrics)
	return rm
}

// begin counts a REST request in flight.
func (m *gatewayMetrics) begin(ctx context.Context, r *request) context.Context {
	if r.protocol == protocolHTTP {
		m.inFlight.Inc()
	}
	return ctx
}

// end records a REST request once it is answered: under its label when
// something other than the routes served it (gateway_service, demo),
// else under its route, else under unmatched.
func (m *gatewayMetrics) end(_ context.Context, r *request) {
	if r.protocol != protocolHTTP {
		return
	}
	d := time.Since(r.start).Seconds()
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	var rm *routeMetrics
	if r.label == "" {
		rm = m.of(r)
	}
	if rm != nil && r.method == rm.method {
		rm.requests(status).Inc()
		rm.duration.Observe(d)
	} else {
		version, route := "", routeUnmatched
		switch {
		case rm != nil:
			version, route = rm.version, rm.route
		case r.label != "":
			route = r.label
		}
		method := methodLabel(r.method)
		m.requests.WithLabelValues(version, route, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(version, route, method).Observe(d)
	}
	m.inFlight.Dec()
}

// requests is the route's request counter for a status.
func (rm *routeMetrics) requests(status int) prometheus.Counter {
	if c, ok := (*rm.statuses.Load())[status]; ok {
		return c
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	old := *rm.statuses.Load()
	if c, ok := old[status]; ok {
		return c
	}
	next := maps.Clone(old)
	next[status] = rm.m.requests.WithLabelValues(rm.version, rm.route, rm.method, strconv.Itoa(status))
	rm.statuses.Store(&next)
	return next[status]
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

// cached counts a read's outcome.
func (m *gatewayMetrics) cached(r *request, e cacheEvent) {
	rm := m.of(r)
	if rm == nil || e.invalidation || int(e.read) >= len(rm.cache) {
		return
	}
	c := rm.cache[e.read].Load()
	if c == nil {
		counter := m.cache.WithLabelValues(rm.version, rm.route, e.read.String())
		rm.cache[e.read].CompareAndSwap(nil, &counter)
		c = rm.cache[e.read].Load()
	}
	(*c).Inc()
}

// idempotency counts an Idempotency-Key replay or refusal.
func (m *gatewayMetrics) idempotency(r *request, e idempotencyOutcome) {
	rm := m.of(r)
	switch {
	case rm == nil:
	case e.replayed:
		m.replays.WithLabelValues(rm.version, rm.route).Inc()
	default:
		m.conflicts.WithLabelValues(rm.version, rm.route, e.conflict).Inc()
	}
}

// stepEnded counts a pipeline step's outcome, or an undo action's result.
func (m *gatewayMetrics) stepEnded(_ context.Context, r *request, e stepOutcome) {
	rm := m.of(r)
	if rm == nil {
		return
	}
	if e.undoOf != nil {
		result := "ok"
		if e.err != nil {
			result = "failed"
		}
		m.compensations.WithLabelValues(rm.version, rm.route, e.undoOf.Name, result).Inc()
		return
	}
	code := codeOK
	if e.err != nil {
		code = string(socket.AsError(e.err).Code)
	}
	m.steps.WithLabelValues(rm.version, rm.route, e.step.Name, code).Inc()
}

// shed counts a route's answer that shed load.
func (m *gatewayMetrics) shed(r *request, err *socket.Error) {
	rm := m.of(r)
	if rm == nil {
		return
	}
	reason, _ := err.Details[socket.DetailReason].(string)
	switch reason {
	case "", socket.ReasonDraining, socket.ReasonNoReadyInstance, socket.ReasonOutcomeUnknown, reasonStoreDown:
	default:
		reason = "other" // the services' own reasons: keep the label bounded
	}
	m.shedTotal.WithLabelValues(rm.version, rm.route, string(err.Code), reason).Inc()
}

// metricsHandler serves the registry the gateway's metrics are in; 404
// when there is none to serve.
func (g *Gateway) metricsHandler() http.Handler {
	if g.metrics == nil || g.metrics.gatherer == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(g.metrics.gatherer, promhttp.HandlerOpts{})
}

// NewRegistry returns a Prometheus registry with the Go runtime and
// process collectors, for a process's /metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
