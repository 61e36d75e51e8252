package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestSecondOwnerSharesTheSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, second := New(reg), New(reg)
	a := first.CounterVec("x_seen_total", "Things seen.", "kind")
	b := second.CounterVec("x_seen_total", "Things seen.", "kind")
	if a != b {
		t.Fatal("the second registration made its own collector")
	}
	if first.Err() != nil || second.Err() != nil {
		t.Fatalf("errors: %v, %v", first.Err(), second.Err())
	}
	first.Gauge("x_open", "Things open.").Set(2)
	if g := second.Gauge("x_open", "Things open."); testValue(t, g) != 2 {
		t.Fatal("the second owner's gauge is not the first's")
	}
}

func TestConflictsAreGathered(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg).Counter("x_total", "Things.")
	r := New(reg)
	r.CounterVec("x_total", "Things.", "kind") // same name, other labels
	r.Gauge("", "no name")
	if r.Err() == nil {
		t.Fatal("no error for a conflicting and an invalid registration")
	}
}

func testValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var out dto.Metric
	if err := (<-ch).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetGauge().GetValue()
}
