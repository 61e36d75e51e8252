package gateway

import (
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

	"github.com/streamgate/streamgate/gateway/config"
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

// gatewayMetrics are a gateway's collectors; nil when metrics are off.
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
	shed          *prometheus.CounterVec // version, route, code, reason
	sockets       socketMetrics

	writers sync.Pool // *metricsWriter
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
	m.shed = counter("streamgate_gateway_shed_total",
		"Route answers that shed load: 429 RESOURCE_EXHAUSTED or 503 UNAVAILABLE, by code and reason.", "version", "route", "code", "reason")
	m.sockets.register(register, counter)
	if err != nil {
		return nil, err
	}
	m.writers.New = func() any { return new(metricsWriter) }
	return m, nil
}

// routeKey names a route of one table: a version may share its routes
// with the versions that extend it.
type routeKey struct {
	version  *config.Version
	resource *config.Resource
	route    *config.Route
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

// routeMetricsOf builds the series of every route of a configuration.
func (m *gatewayMetrics) routeMetricsOf(cfg *config.Config) map[routeKey]*routeMetrics {
	if m == nil {
		return nil
	}
	out := map[routeKey]*routeMetrics{}
	for _, v := range cfg.Versions {
		for _, res := range v.Resources {
			for _, rt := range res.Routes {
				rm := &routeMetrics{m: m, version: v.Name, route: routePath(v.Name, res.Name, rt), method: rt.Method}
				rm.duration = m.duration.WithLabelValues(rm.version, rm.route, rm.method)
				rm.statuses.Store(&map[int]prometheus.Counter{})
				out[routeKey{v, res, rt}] = rm
			}
		}
	}
	return out
}

// routeMetrics returns a resolved route's series; nil when metrics are off.
func (t *table) routeMetrics(r resolved) *routeMetrics {
	return t.metrics[routeKey{r.version, r.resource, r.route}]
}

// metricsWriter records a REST request's status and route for its metrics.
type metricsWriter struct {
	http.ResponseWriter
	status int
	route  *routeMetrics // nil until the request resolves to a route
	label  string        // the route label when route is nil
	start  time.Time
}

// WriteHeader records the first final status.
func (w *metricsWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *metricsWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *metricsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// begin starts measuring a REST request.
func (m *gatewayMetrics) begin(w http.ResponseWriter) *metricsWriter {
	m.inFlight.Inc()
	mw := m.writers.Get().(*metricsWriter)
	*mw = metricsWriter{ResponseWriter: w, label: routeUnmatched, start: time.Now()}
	return mw
}

// end records a REST request once it is answered.
func (m *gatewayMetrics) end(mw *metricsWriter, method string) {
	d := time.Since(mw.start).Seconds()
	status := mw.status
	if status == 0 {
		status = http.StatusOK
	}
	if rm := mw.route; rm != nil && method == rm.method {
		rm.requests(status).Inc()
		rm.duration.Observe(d)
	} else {
		version := ""
		route := mw.label
		if rm != nil {
			version, route = rm.version, rm.route
		}
		method = methodLabel(method)
		m.requests.WithLabelValues(version, route, method, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(version, route, method).Observe(d)
	}
	m.inFlight.Dec()
	*mw = metricsWriter{}
	m.writers.Put(mw)
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

// routeOf labels a REST request with its route, when w measures it.
func routeOf(w http.ResponseWriter, rm *routeMetrics) {
	if mw := metricsWriterOf(w); mw != nil && rm != nil {
		mw.route = rm
	}
}

// labelOf labels a REST request that names no route of the table.
func labelOf(w http.ResponseWriter, label string) {
	if mw := metricsWriterOf(w); mw != nil {
		mw.label = label
	}
}

// metricsWriterOf finds the writer that measures a request under the
// writers wrapped around it (the trace's and the access log's status
// recorders); nil when metrics are off.
func metricsWriterOf(w http.ResponseWriter) *metricsWriter {
	for {
		switch x := w.(type) {
		case *metricsWriter:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}

// cached counts a read's outcome.
func (rm *routeMetrics) cached(o readOutcome) {
	if rm == nil || int(o) >= len(rm.cache) {
		return
	}
	c := rm.cache[o].Load()
	if c == nil {
		counter := rm.m.cache.WithLabelValues(rm.version, rm.route, o.String())
		rm.cache[o].CompareAndSwap(nil, &counter)
		c = rm.cache[o].Load()
	}
	(*c).Inc()
}

// replayed counts an Idempotency-Key replay.
func (rm *routeMetrics) replayed() {
	if rm != nil {
		rm.m.replays.WithLabelValues(rm.version, rm.route).Inc()
	}
}

// conflicted counts an Idempotency-Key request refused for reason.
func (rm *routeMetrics) conflicted(reason string) {
	if rm != nil {
		rm.m.conflicts.WithLabelValues(rm.version, rm.route, reason).Inc()
	}
}

// stepRan counts a pipeline step's outcome.
func (rm *routeMetrics) stepRan(step string, err error) {
	if rm == nil {
		return
	}
	code := "OK"
	if err != nil {
		code = string(socket.AsError(err).Code)
	}
	rm.m.steps.WithLabelValues(rm.version, rm.route, step, code).Inc()
}

// compensated counts an undo action's result.
func (rm *routeMetrics) compensated(step string, err error) {
	if rm == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	rm.m.compensations.WithLabelValues(rm.version, rm.route, step, result).Inc()
}

// answered counts a route's answer that shed load.
func (rm *routeMetrics) answered(a answer) {
	if rm == nil || a.err == nil || (a.err.Code != socket.CodeResourceExhausted && a.err.Code != socket.CodeUnavailable) {
		return
	}
	reason, _ := a.err.Details[socket.DetailReason].(string)
	switch reason {
	case "", socket.ReasonDraining, socket.ReasonNoReadyInstance, socket.ReasonOutcomeUnknown, reasonStoreDown:
	default:
		reason = "other" // the services' own reasons: keep the label bounded
	}
	rm.m.shed.WithLabelValues(rm.version, rm.route, string(a.err.Code), reason).Inc()
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
