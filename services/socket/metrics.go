package socket

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/internal/promreg"
	"github.com/streamgate/streamgate/status"
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
// subscribed stream's queue was full), and, for a transport that stores
// events (natsserve.WithEvents: JetStream),
// streamgate_service_events_stored_total,
// streamgate_service_events_store_failed_total (no stream holds the
// topic, or every attempt failed) and
// streamgate_service_events_store_dropped_total (its queue was full). Servers of the same name registered
// with one reg share their series. Default: no metrics.
func WithMetrics(reg prometheus.Registerer) ServerOption {
	return serverOptionFunc(func(c *serverConfig) { c.metrics = reg })
}

// frameCodes are the code label's values: OK, then the standard codes.
// An index into it picks an action's frames counter.
var frameCodes = append([]status.Code{"OK"}, status.Codes()...)

// serverMetrics are a server's collectors, an observer of its events.
type serverMetrics struct {
	frames       *prometheus.CounterVec   // action, code
	duration     *prometheus.HistogramVec // action
	coalescedVec *prometheus.CounterVec   // action
	inFlight     prometheus.Gauge
	streamFlight prometheus.Histogram
	streams      prometheus.Gauge
	refusals     prometheus.Counter
	published    prometheus.Counter
	delivered    prometheus.Counter
	dropped      prometheus.Counter
	stored       prometheus.Counter
	storeFailed  prometheus.Counter
	storeDropped prometheus.Counter
	unknown      *actionMetrics // frames naming no registered action

	index int // the observer's index in the server's observers
	noServerObserver
}

// actionMetrics are one action's series, looked up once at registration.
type actionMetrics struct {
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
	r := promreg.New(prometheus.WrapRegistererWith(prometheus.Labels{"service": service}, reg))
	m := &serverMetrics{}
	m.frames = r.CounterVec("streamgate_service_frames_total",
		"Request frames the service finished (answered, refused or cancelled), by action and code (OK for success).", "action", "code")
	m.duration = promreg.Register(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "streamgate_service_handler_duration_seconds",
		Help:    "Time the action's handler ran, by action.",
		Buckets: handlerBuckets,
	}, []string{"action"}))
	m.coalescedVec = r.CounterVec("streamgate_service_coalesced_total",
		"Callers answered by another caller's handler run of an identical read, by action.", "action")
	m.inFlight = r.Gauge("streamgate_service_requests_in_flight", "Requests running on the server.")
	m.streamFlight = promreg.Register(r, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "streamgate_service_stream_requests_in_flight",
		Help:    "Requests in flight on a stream, observed as each request is admitted on it.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 … 1024
	}))
	m.streams = r.Gauge("streamgate_service_open_streams", "Socket streams open on the server.")
	m.refusals = r.Counter("streamgate_service_auth_refusals_total",
		"Streams and calls refused because their key was missing, unknown or revoked.")
	m.published = r.Counter("streamgate_service_events_published_total", "Events the service published.")
	m.delivered = r.Counter("streamgate_service_events_delivered_total", "Events handed to a subscribed stream's sender.")
	m.dropped = r.Counter("streamgate_service_events_dropped_total", "Events a subscribed stream missed because its event queue was full.")
	m.stored = r.Counter("streamgate_service_events_stored_total", "Events the service's transport stored (JetStream acknowledged them).")
	m.storeFailed = r.Counter("streamgate_service_events_store_failed_total",
		"Events the service's transport did not store: no stream holds the topic, or every attempt failed.")
	m.storeDropped = r.Counter("streamgate_service_events_store_dropped_total",
		"Events the service's transport dropped unstored because its queue was full.")
	if err := r.Err(); err != nil {
		return nil, err
	}
	m.unknown = m.actionSeries("unknown")
	return m, nil
}

// actionSeries makes an action's series.
func (m *serverMetrics) actionSeries(name string) *actionMetrics {
	return &actionMetrics{
		name:      name,
		duration:  m.duration.WithLabelValues(name),
		coalesced: m.coalescedVec.WithLabelValues(name),
		frames:    make([]atomic.Pointer[prometheus.Counter], len(frameCodes)),
	}
}

var _ serverObserver = (*serverMetrics)(nil)

// action makes an action's series.
func (m *serverMetrics) action(a *action) any { return m.actionSeries(a.name) }

// of returns an action's series: the unknown action's for nil.
func (m *serverMetrics) of(a *action) *actionMetrics {
	if a == nil {
		return m.unknown
	}
	am, _ := a.observed[m.index].(*actionMetrics)
	return am
}

// answered counts a request answered with e (nil: OK).
func (m *serverMetrics) answered(a *action, e *status.Error) {
	am := m.of(a)
	if am == nil {
		return
	}
	i := 0
	if e != nil {
		i = codeIndex(e.Code)
	}
	c := am.frames[i].Load()
	if c == nil {
		counter := m.frames.WithLabelValues(am.name, string(frameCodes[i]))
		am.frames[i].CompareAndSwap(nil, &counter)
		c = am.frames[i].Load()
	}
	(*c).Inc()
}

// codeIndex is a code's index in frameCodes; a code outside the standard
// set crosses the wire as INTERNAL and counts as one.
func codeIndex(c status.Code) int {
	for i, fc := range frameCodes[1:] {
		if fc == c {
			return i + 1
		}
	}
	return codeIndex(CodeInternal)
}

// handlerEnded records a handler run.
func (m *serverMetrics) handlerEnded(a *action, d time.Duration, _ *status.Error) {
	if am := m.of(a); am != nil {
		am.duration.Observe(d.Seconds())
	}
}

// coalesced counts a caller answered by another caller's run.
func (m *serverMetrics) coalesced(a *action) {
	if am := m.of(a); am != nil {
		am.coalesced.Inc()
	}
}

// server records a server-wide event.
func (m *serverMetrics) server(e serverEvent) {
	switch e.kind {
	case streamChanged:
		m.streams.Add(float64(e.n))
	case runningChanged:
		m.inFlight.Add(float64(e.n))
	case admittedOnStream:
		m.streamFlight.Observe(float64(e.n))
	case keyRefused:
		m.refusals.Inc()
	case eventPublished:
		m.published.Inc()
	case eventDelivered:
		m.delivered.Inc()
	case eventDropped:
		m.dropped.Inc()
	case eventStored:
		m.stored.Inc()
	case eventStoreFailed:
		m.storeFailed.Inc()
	case eventStoreDropped:
		m.storeDropped.Inc()
	}
}

// refused counts a frame answered without running (no action, busy,
// draining): under its action when the server has it.
func (s *Server) refused(actionName string, e *status.Error) {
	s.obs.answered(s.actions[actionName], e)
}

// refuse answers a request frame that does not run, and counts it.
func (st *serverStream) refuse(f *socketv1.Request, raw bool, e *status.Error) {
	st.srv.refused(f.GetAction(), e)
	st.reply(newResponse(f.GetId(), raw, nil, e))
}
