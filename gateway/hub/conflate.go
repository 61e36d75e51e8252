package hub

import (
	"slices"

	"github.com/streamgate/streamgate/services/socket"
)

// delivery is a numbered event and the watchers it goes to: those
// watching when it was numbered, who may see it (a gap marker goes to
// everyone).
type delivery struct {
	ev       Event
	vis      socket.Visibility
	everyone bool // a gap marker: whatever the visibility
	watchers []*watcher
}

// run hands the event to its watchers still watching.
func (d *delivery) run() {
	for _, w := range d.watchers {
		if !w.stopped.Load() && (d.everyone || d.vis.Allows(w.p)) {
			w.deliver(d.ev)
		}
	}
}

// replaceableBy reports whether next may take d's place in the queue:
// both events (not gap markers) seen by the same watchers, so whoever
// would have had d gets next, counted as skipping d.
func (d *delivery) replaceableBy(next *delivery) bool {
	return !d.everyone && !next.everyone && d.vis.Public == next.vis.Public &&
		slices.Equal(d.vis.Subjects, next.vis.Subjects) && slices.Equal(d.vis.Roles, next.vis.Roles)
}

// inlineWatchers is how many watchers a topic's events are handed to on
// the subscription's own goroutine, in full: only a topic with more goes
// through drain and may be conflated by the hub (its sockets still
// conflate for a client that reads slowly).
const inlineWatchers = 64

// handLocked hands d out. A conflated topic with more than inlineWatchers
// watchers goes through drain, on a goroutine of its own, so the
// subscription never waits for thousands of watchers: an event that comes
// while an earlier one still waits there replaces it. A topic some watcher needs every event of is
// handed out at once, unless drain still runs (then behind it, in
// order). Called with deliverMu held, so events come in seq order.
func (up *upstream) handLocked(d delivery, conflate bool) {
	up.pendMu.Lock()
	if !up.draining && (!conflate || len(d.watchers) <= inlineWatchers) {
		up.pendMu.Unlock()
		d.run()
		return
	}
	if n := len(up.pending); conflate && n > 0 && up.pending[n-1].replaceableBy(&d) {
		d.ev.Skipped = up.pending[n-1].ev.Skipped + 1
		up.pending[n-1] = d
		up.pendMu.Unlock()
		return
	}
	up.pending = append(up.pending, d)
	start := !up.draining
	up.draining = true
	up.pendMu.Unlock()
	if start {
		go up.drain()
	}
}

// drain hands out the pending events in order until none is left.
func (up *upstream) drain() {
	for {
		up.pendMu.Lock()
		if len(up.pending) == 0 {
			up.draining = false
			up.pending = up.pending[:0]
			up.pendMu.Unlock()
			return
		}
		d := up.pending[0]
		up.pending[0] = delivery{}
		up.pending = up.pending[1:]
		up.pendMu.Unlock()
		d.run()
	}
}
