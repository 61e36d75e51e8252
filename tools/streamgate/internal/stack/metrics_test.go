package stack_test

import (
	"net/http"
	"testing"

	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/tools/streamgate/internal/stack"
)

// TestMetricsAfterAWalkThrough buys an item through the stack and checks
// that the admin listener's /metrics shows the gateway's series and every
// service's, each under its service label.
func TestMetricsAfterAWalkThrough(t *testing.T) {
	s := startStack(t, stack.Options{})
	u := s.newUser(t, "metrics-ann")
	it := s.newItem(t, 1200, 3)
	o := s.newOrder(t, u.ID, it.ID, 1, "")
	s.pay(t, "v3", as(t, u.ID), o.ID, "A", cardOK).Want(t, http.StatusOK, "")
	for range 2 {
		s.call(t, as(t, u.ID), "GET", "/v3/orders/"+o.ID, nil).Want(t, http.StatusOK, "")
	}

	m := promtest.Scrape(t, s.admin+"/metrics")
	const pay = "/v3/orders/{id}/pay"
	if got := m.Value("streamgate_gateway_requests_total", "version", "v3", "route", pay, "method", "POST", "status", "200"); got != 1 {
		t.Errorf("pay requests = %v, want 1", got)
	}
	if got := m.Value("streamgate_gateway_pipeline_steps_total", "route", pay, "code", "OK"); got < 2 {
		t.Errorf("pay pipeline steps = %v, want its steps", got)
	}
	if got := m.Value("streamgate_gateway_cache_requests_total", "route", "/v3/orders/{id}"); got != 2 {
		t.Errorf("order reads by cache outcome = %v, want 2", got)
	}
	for _, svc := range []string{"users", "inventory", "orders", "payments"} {
		if s.runtimes[svc] != "" {
			continue // a child process: its metrics are its own
		}
		if got := m.Value("streamgate_service_frames_total", "service", svc); got < 1 {
			t.Errorf("frames of %s = %v, want some", svc, got)
		}
		if s.nats != "" {
			continue // the gateways call the services over NATS: no stream to count
		}
		if got := m.Value("streamgate_service_open_streams", "service", svc); got < 1 {
			t.Errorf("open streams of %s = %v, want the gateway's", svc, got)
		}
	}
	if !m.Has("go_goroutines") {
		t.Error("no Go runtime metrics")
	}
}
