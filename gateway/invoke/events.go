package invoke

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/hub"
	"github.com/streamgate/streamgate/gateway/natsconns"
	"github.com/streamgate/streamgate/internal/eventlog"
)

// eventsOpenTimeout bounds making the event windows' streams when the
// gateway starts.
const eventsOpenTimeout = 10 * time.Second

// events is the event log the gateway reads services' events from, with
// the configuration's events: block; the zero events (no block) leaves
// events to each service's subscription.
type events struct {
	cfg *config.Events // the block it was opened with; nil: off
	nc  *nats.Conn
	log *hub.Log
}

// openEvents connects to the block's NATS server and makes its windows'
// streams (services store their events only in streams a gateway made).
// A plaintext nats:// URL off loopback is refused as a service's is.
func openEvents(cfg *config.Config, insecurePlaintext bool) (events, error) {
	e := cfg.Events
	if e == nil {
		return events{}, nil
	}
	if err := natsconns.CheckPlaintext("events", e.NATSURL, cfg.Plaintext || insecurePlaintext); err != nil {
		return events{}, err
	}
	nc, err := nats.Connect(e.NATSURL, nats.Name("streamgate gateway events"), nats.MaxReconnects(-1))
	if err != nil {
		return events{}, fmt.Errorf("gateway: events: NATS at %s: %w", natsconns.Redacted(e.NATSURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return events{}, fmt.Errorf("gateway: events: %w", err)
	}
	windows := make([]eventlog.Window, 0, len(e.Windows))
	for _, w := range e.Windows {
		windows = append(windows, eventlog.Window{Prefix: w.Prefix, MaxAge: w.MaxAge, MaxBytes: w.MaxBytes})
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventsOpenTimeout)
	defer cancel()
	l, err := eventlog.Open(ctx, js, windows, eventlog.WithRoot(e.Root), eventlog.WithReplicas(max(e.Replicas, 1)))
	if err != nil {
		nc.Close()
		return events{}, fmt.Errorf("gateway: events: %w", err)
	}
	return events{cfg: e, nc: nc, log: hub.NewLog(l)}, nil
}

// watchForCache has every event published under the root drop the
// cached reads it makes stale (inv), whichever transport its service's
// requests take. Called once a table is in force.
func (e events) watchForCache(inv *invalidator) error {
	if e.nc == nil || inv.cache == nil {
		return nil
	}
	_, err := e.nc.Subscribe(e.cfg.Root+".>", func(m *nats.Msg) {
		inv.invalidateStored(m.Header.Get(eventlog.HeaderService), m.Header.Get(eventlog.HeaderTopic))
	})
	if err != nil {
		return fmt.Errorf("gateway: events: %w", err)
	}
	return nil
}

// checkSame refuses a reload that changes the events: block, which takes
// a restart (the watches in force read the streams it made).
func (e events) checkSame(cfg *config.Config) error {
	if !reflect.DeepEqual(e.cfg, cfg.Events) {
		return fmt.Errorf("gateway: %s: the events block changes only with a restart", cfg.Path)
	}
	return nil
}

// state is the events' part of the core's health (Health.Events).
func (e events) state() string {
	switch {
	case e.nc == nil:
		return "off"
	case e.nc.IsConnected():
		return "ok"
	}
	return "unavailable"
}

// close waits for the watches being made again and closes the connection
// (the watches end with their sockets).
func (e events) close() {
	if e.nc == nil {
		return
	}
	e.log.Close()
	e.nc.Close()
}
