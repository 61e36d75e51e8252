package subscribers

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// event is the gateway's event frame for state n of a topic whose seq
// was base when the subscription began, skipped states conflated away
// before it (0: the field is absent, as today's gateway sends).
func event(base int64, n, skipped int, due int64) []byte {
	s := `{"type":"event",`
	if skipped > 0 {
		s += fmt.Sprintf(`"skipped":%d,`, skipped)
	}
	return fmt.Appendf(nil, `%s"topic":"items/t-1","seq":%d,"data":{"n":%d,"t":%d}}`, s, base+int64(n), n, due)
}

// TestSubscriberCounts feeds one subscriber frames as the gateway writes
// them and checks each count: delivered, duplicate, out of order,
// skipped (conflated), gapped, lost, and whether it ended on the last
// state.
func TestSubscriberCounts(t *testing.T) {
	due := time.Now().Add(-time.Millisecond).UnixNano()
	cases := []struct {
		name   string
		frames []string // "n", "n/skipped", "gap SEQ-BASE", "junk"
		closed bool     // the socket closed after the frames
		want   string   // deliveries dup ooo skipped gapped lost missing unreadable latest
	}{
		{"in order", []string{"1", "2", "3", "4", "5"}, false, "5 0 0 0 0 0 0 0 true"},
		{"a duplicate", []string{"1", "2", "2", "3", "4", "5"}, false, "5 1 0 0 0 0 0 0 true"},
		{"out of order", []string{"1", "3", "2", "4", "5"}, false, "5 0 1 0 0 0 0 0 true"},
		{"lost in the middle", []string{"1", "2", "5"}, false, "3 0 0 0 0 2 0 0 true"},
		{"not there at the end", []string{"1", "2", "3"}, false, "3 0 0 0 0 0 2 0 false"},
		{"conflated", []string{"1", "4/2", "5"}, false, "3 0 0 2 0 0 0 0 true"},
		{"conflated to the last", []string{"5/4"}, false, "1 0 0 4 0 0 0 0 true"},
		{"conflated, one lost besides", []string{"1", "5/2"}, false, "2 0 0 2 0 1 0 0 true"},
		{"a gap marker", []string{"1", "gap 3", "4", "5"}, false, "3 0 0 0 2 0 0 0 true"},
		{"a gap marker, numbered anew after it", []string{"1", "gap 1", "5"}, false, "2 0 0 0 3 0 0 0 true"},
		{"a gap marker then a hole", []string{"1", "gap 1", "3", "5"}, false, "3 0 0 0 1 1 0 0 true"},
		{"unreadable frames", []string{"1", "junk", "2", "3", "4", "5"}, false, "5 0 0 0 0 0 0 1 true"},
		{"closed: lost only up to the highest seen", []string{"1", "3"}, true, "2 0 0 0 0 1 0 0 false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			const base = 7
			s := &subscriber{states: 5, seen: make([]uint64, 1), base: base, hist: newShardedHistogram().shard(0)}
			for _, f := range c.frames {
				var msg []byte
				var n, skipped, gap int
				switch {
				case f == "junk":
					msg = []byte(`{"type":"event","topic":"items/t-1","seq":"x"}`)
				case strings.HasPrefix(f, "gap "):
					fmt.Sscanf(f, "gap %d", &gap)
					msg = fmt.Appendf(nil, `{"type":"gap","topic":"items/t-1","seq":%d}`, base+gap)
				default:
					if _, err := fmt.Sscanf(f, "%d/%d", &n, &skipped); err != nil {
						skipped = 0
					}
					msg = event(base, n, skipped, due)
				}
				s.frame(msg)
			}
			if c.closed {
				s.closed = closeTooSlow
			}
			lost, missing := s.lost()
			got := fmt.Sprintf("%d %d %d %d %d %d %d %d %v", s.deliveries, s.duplicates, s.outOfOrder, s.skipped, s.gapped, lost, missing, s.unreadable, s.lastN == s.states)
			if got != c.want {
				t.Errorf("deliveries dup ooo skipped gapped lost missing unreadable latest = %s, want %s", got, c.want)
			}
			if n := s.hist.h.Count(); n != s.deliveries {
				t.Errorf("%d latencies for %d deliveries", n, s.deliveries)
			}
			if s.deliveries > 0 && s.hist.h.Percentile(50) < time.Millisecond {
				t.Errorf("latency %v, want at least the 1ms since the state was due", s.hist.h.Percentile(50))
			}
		})
	}
}

// A subscriber's counts add into the row: a cut-off one counts as cut
// off, a refused one only as refused.
func TestSawResultAddsUp(t *testing.T) {
	var r Result
	r.add(&subscriber{refusal: fmt.Errorf("subscribe answered 403")})
	r.add(&subscriber{states: 3, seen: []uint64{0b1110}, lastN: 3, maxN: 3, deliveries: 3, first: 10, last: 50})
	r.add(&subscriber{states: 3, seen: []uint64{0b0010}, lastN: 1, maxN: 1, deliveries: 1, closed: closeTooSlow, first: 5, last: 20, retries: 2})
	r.add(&subscriber{states: 3, seen: []uint64{0b0100}, lastN: 2, maxN: 2, deliveries: 1, first: 7, last: 30})
	want := Result{Connected: 3, Refused: 1, FirstRefusal: "subscribe answered 403", Retries: 2, Deliveries: 5, Lost: 1, Missing: 1, Latest: 1, CutOff: 1, First: 5, Last: 50}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
}
