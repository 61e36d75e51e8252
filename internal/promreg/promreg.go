// Package promreg registers Prometheus collectors so that two owners of
// one registry share their series: a collector already registered with
// the same description is reused instead of failing, and the other
// registration errors are gathered for the caller to return once.
//
//	r := promreg.New(reg)
//	open := r.Gauge("streamgate_x_open", "Things open now.")
//	seen := r.CounterVec("streamgate_x_seen_total", "Things seen, by kind.", "kind")
//	if err := r.Err(); err != nil { … }
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry registers collectors with one Registerer, reusing those it
// already holds, and remembers the errors it met.
type Registry struct {
	reg prometheus.Registerer
	err error
}

// New returns a Registry registering with reg.
func New(reg prometheus.Registerer) *Registry { return &Registry{reg: reg} }

// Register registers c and returns it, or returns the collector of the
// same description already registered (another owner's). A failure
// other than that is kept for Err, and c is returned unregistered.
func Register[C prometheus.Collector](r *Registry, c C) C {
	if err := r.reg.Register(c); err != nil {
		var dup prometheus.AlreadyRegisteredError
		if errors.As(err, &dup) {
			return dup.ExistingCollector.(C)
		}
		r.err = errors.Join(r.err, err)
	}
	return c
}

// Counter registers a counter without labels.
func (r *Registry) Counter(name, help string) prometheus.Counter {
	return Register(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// CounterVec registers a counter with the labels given.
func (r *Registry) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return Register(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
}

// Gauge registers a gauge without labels.
func (r *Registry) Gauge(name, help string) prometheus.Gauge {
	return Register(r, prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help}))
}

// Err returns the registration failures met so far, joined; nil if none.
func (r *Registry) Err() error { return r.err }
