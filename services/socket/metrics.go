package socket

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// WithMetrics registers the server's Prometheus metrics with reg, each
// labelled service=Config.Name: streamgate_service_frames_total (requests
// answered, by action and code, "OK" for success),
// streamgate_service_handler_duration_seconds (by action),
// streamgate_service_requests_in_flight,
// streamgate_service_stream_requests_in_flight (a histogram of a stream's
// requests in flight, observed as each is admitted),
// streamgate_service_open_streams, streamgate_service_auth_refusals_total
// streamgate_service_coalesced_total (callers answered by another
// caller's handler run, by action) and the events counters
// streamgate_service_events_published_total,
// streamgate_service_events_delivered_total (handed to a subscribed
// stream's sender) and streamgate_service_events_dropped_total (a
// subscribed stream's queue was full). Servers of the same name registered
// with one reg share their series. Default: no metrics.
func WithMetrics(reg prometheus.Registerer) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.metrics = reg })
}

// frameCodes are the code label's values: OK, then the standard codes.
// An index into it picks an action's frames counter.
var frameCodes = append([]Code{"OK"}, Codes()...)

// serverMetrics are a server's collectors; a nil *serverMetrics records
// nothing.
type serverMetrics struct {
	frames       *prometheus.CounterVec   // action, code
	duration     *prometheus.HistogramVec // action
	coalesced    *prometheus.CounterVec   // action
	inFlight     prometheus.Gauge
	streamFlight prometheus.Histogram
	streams      prometheus.Gauge
	refusals     prometheus.Counter
	published    prometheus.Counter
	delivered    prometheus.Counter
	dropped      prometheus.Counter
	unknown      *actionMetrics // frames naming no registered action
}

// actionMetrics are one action's series, looked up once at registration.
type actionMetrics struct {
	m         *serverMetrics
	name      string
	duration  prometheus.Observer
	coalesced prometheus.Counter
	frames    []atomic.Pointer[prometheus.Counter] // by frameCodes index, made on first use
}

// handlerBuckets span a cached lookup (tens of µs) to a slow provider call.
var handlerBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// newServerMetrics registers a server's collectors with reg (nil: none).
func newServerMetrics(reg prometheus.Registerer, service string) (*serverMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg)
	m := &serverMetrics{}
	var err error
	register := func(c prometheus.Collector) prometheus.Collector {
		if rerr := reg.Register(c); rerr != nil {
			var dup prometheus.AlreadyRegisteredError
			if errors.As(rerr, &dup) {
				return dup.ExistingCollector // another server of the same name
			}
			err = errors.Join(err, rerr)
		}
		return c
	}
	m.frames = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "streamgate_service_frames_total",
		Help: "Request frames the service finished (answered, refused or cancelled), by action and code (OK for success).",
	}, []string{"action", "code"})).(*prometheus.CounterVec)
	m.duration = register(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "streamgate_service_handler_duration_seconds",
		Help:    "Time the action's handler ran, by action.",
		Buckets: handlerBuckets,
	}, []string{"action"})).(*prometheus.HistogramVec)
	m.coalesced = register(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "streamgate_service_coalesced_total",
		Help: "Callers answered by another caller's handler run of an identical read, by action.",
	}, []string{"action"})).(*prometheus.CounterVec)
	m.inFlight = register(prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "streamgate_service_requests_in_flight",
		Help: "Requests running on the server.",
	})).(prometheus.Gauge)
	m.streamFlight = register(prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "streamgate_service_stream_requests_in_flight",
		Help:    "Requests in flight on a stream, observed as each request is admitted on it.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
	})).(prometheus.Histogram)
	m.streams = register(prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "streamgate_service_open_streams",
		Help: "Socket streams open on the server.",
	})).(prometheus.Gauge)
	m.refusals = register(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "streamgate_service_auth_refusals_total",
		Help: "Streams and calls refused because their key was missing, unknown or revoked.",
	})).(prometheus.Counter)
	counter := func(name, help string) prometheus.Counter {
		return register(prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})).(prometheus.Counter)
	}
	m.published = counter("streamgate_service_events_published_total", "Events the service published.")
	m.delivered = counter("streamgate_service_events_delivered_total", "Events handed to a subscribed stream's sender.")
	m.dropped = counter("streamgate_service_events_dropped_total", "Events a subscribed stream missed because its event queue was full.")
	if err != nil {
		return nil, err
	}
	m.unknown = m.action("unknown")
	return m, nil
}

// action returns an action's series; nil when metrics are off.
func (m *serverMetrics) action(name string) *actionMetrics {
	if m == nil {
		return nil
	}
	return &actionMetrics{
		m:         m,
		name:      name,
		duration:  m.duration.WithLabelValues(name),
		coalesced: m.coalesced.WithLabelValues(name),
		frames:    make([]atomic.Pointer[prometheus.Counter], len(frameCodes)),
	}
}

// refused counts a frame answered without running (no action, busy,
// draining): under its action when the server has it.
func (s *Server) refused(actionName string, e *Error) {
	if s.metrics == nil {
		return
	}
	am := s.metrics.unknown
	if a := s.actions[actionName]; a != nil {
		am = a.metrics
	}
	am.answered(e)
}

// answered counts a request answered with e (nil: OK).
func (am *actionMetrics) answered(e *Error) {
	if am == nil {
		return
	}
	i := 0
	if e != nil {
		i = codeIndex(e.Code)
	}
	c := am.frames[i].Load()
	if c == nil {
		counter := am.m.frames.WithLabelValues(am.name, string(frameCodes[i]))
		am.frames[i].CompareAndSwap(nil, &counter)
		c = am.frames[i].Load()
	}
	(*c).Inc()
}

// codeIndex is a code's index in frameCodes; a code outside the standard
// set crosses the wire as INTERNAL and counts as one.
func codeIndex(c Code) int {
	for i, fc := range frameCodes[1:] {
		if fc == c {
			return i + 1
		}
	}
	return codeIndex(CodeInternal)
}

// ran records a handler run.
func (am *actionMetrics) ran(d time.Duration) {
	if am != nil {
		am.duration.Observe(d.Seconds())
	}
}

// shared counts a caller answered by another caller's run.
func (am *actionMetrics) shared() {
	if am != nil {
		am.coalesced.Inc()
	}
}

func (m *serverMetrics) streamOpened(delta float64) {
	if m != nil {
		m.streams.Add(delta)
	}
}

func (m *serverMetrics) running(delta float64) {
	if m != nil {
		m.inFlight.Add(delta)
	}
}

func (m *serverMetrics) admittedOnStream(inFlight int64) {
	if m != nil {
		m.streamFlight.Observe(float64(inFlight))
	}
}

func (m *serverMetrics) eventPublished() {
	if m != nil {
		m.published.Inc()
	}
}

func (m *serverMetrics) eventDelivered() {
	if m != nil {
		m.delivered.Inc()
	}
}

func (m *serverMetrics) eventDropped() {
	if m != nil {
		m.dropped.Inc()
	}
}

func (m *serverMetrics) refusedKey() {
	if m != nil {
		m.refusals.Inc()
	}
}

// refuse answers a request frame that does not run, and counts it.
func (st *serverStream) refuse(f *socketv1.Request, raw bool, e *Error) {
	st.srv.refused(f.GetAction(), e)
	st.reply(newResponse(f.GetId(), raw, nil, e))
}
