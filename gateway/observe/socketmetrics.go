package observe

import (
	"github.com/prometheus/client_golang/prometheus"
)

// socketMetrics are the WebSocket endpoint's series (README, "Metrics").
type socketMetrics struct {
	open     prometheus.Gauge
	received *prometheus.CounterVec // type: a frame type, or invalid
	sent     prometheus.Counter
	cutOffs  prometheus.Counter
}

// register makes the socket series with NewMetrics' helpers.
func (s *socketMetrics) register(register func(prometheus.Collector) prometheus.Collector, counter func(name, help string, labels ...string) *prometheus.CounterVec) {
	s.open = register(prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "streamgate_gateway_sockets_open",
		Help: "WebSocket connections of /{version}/socket open now.",
	})).(prometheus.Gauge)
	s.received = counter("streamgate_gateway_socket_frames_received_total",
		"WebSocket frames received, by type (auth, request, cancel, subscribe, unsubscribe, or invalid).", "type")
	s.sent = register(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "streamgate_gateway_socket_frames_sent_total",
		Help: "WebSocket frames written to clients (auth, response and event frames).",
	})).(prometheus.Counter)
	s.cutOffs = register(prometheus.NewCounter(prometheus.CounterOpts{
		Name: "streamgate_gateway_socket_cutoffs_total",
		Help: "WebSocket clients cut off with close code 4408 because their send queue filled.",
	})).(prometheus.Counter)
}

// Connection counts a WebSocket connection's event.
func (m *Metrics) Connection(e ConnEvent) {
	s := &m.sockets
	switch e.Kind {
	case SocketOpened:
		s.open.Inc()
	case SocketClosed:
		s.open.Dec()
	case FrameReceived:
		s.received.WithLabelValues(e.FrameType).Inc() // one of wsedge's frame types, or invalid
	case FrameSent:
		s.sent.Inc()
	case SocketCutOff:
		s.cutOffs.Inc()
	}
}
