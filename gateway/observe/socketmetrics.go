package observe

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/internal/promreg"
)

// socketMetrics are the WebSocket endpoint's series (README, "Metrics").
type socketMetrics struct {
	open     prometheus.Gauge
	received *prometheus.CounterVec // type: a frame type, or invalid
	sent     prometheus.Counter
	cutOffs  prometheus.Counter
	skipped  prometheus.Counter
}

// register makes the socket series with NewMetrics' registry.
func (s *socketMetrics) register(r *promreg.Registry) {
	s.open = r.Gauge("streamgate_gateway_sockets_open", "WebSocket connections of /{version}/socket open now.")
	s.received = r.CounterVec("streamgate_gateway_socket_frames_received_total",
		"WebSocket frames received, by type (auth, request, cancel, subscribe, unsubscribe, or invalid).", "type")
	s.sent = r.Counter("streamgate_gateway_socket_frames_sent_total",
		"WebSocket frames written to clients (auth, response and event frames).")
	s.cutOffs = r.Counter("streamgate_gateway_socket_cutoffs_total",
		"WebSocket clients cut off with close code 4408 because their send queue filled.")
	s.skipped = r.Counter("streamgate_gateway_socket_events_conflated_total",
		"Events WebSocket clients skipped: a newer state of the topic replaced them in a slow client's send queue.")
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
	case EventConflated:
		s.skipped.Add(float64(max(e.States, 1)))
	}
}
