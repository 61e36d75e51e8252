package wsedge

import (
	"strings"
	"testing"
)

// A subscription's held events past the socket's backlog give way to one
// gap marker at the event that overflowed, and the later events follow
// it; the backlog counts what is held.
func TestHeldEventsOverflowToAGap(t *testing.T) {
	out := &outbox{backlogLimit: 3}
	w := newTopic(true)
	for seq := uint64(1); seq <= 5; seq++ {
		ev := Event{Topic: "orders/o1", Seq: seq, Epoch: "e1", Data: []byte(`{}`)}
		w.deliver(out, ev, eventFrame(ev.Topic, ev.Seq, ev.Epoch, ev.Data))
	}
	var got []string
	for _, f := range w.pending {
		got = append(got, string(f.frame))
	}
	want := []string{
		`{"type":"gap","topic":"orders/o1","seq":4,"epoch":"e1"}`,
		`{"type":"event","topic":"orders/o1","seq":5,"epoch":"e1","data":{}}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("held:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := out.backlog.Load(); n != 2 {
		t.Errorf("backlog %d, want 2", n)
	}
}

// since is absent or a non-negative integer.
func TestSinceOf(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		seq  uint64
		okay bool
	}{
		{"", 0, true}, {"null", 0, true}, {"0", 0, true}, {"41", 41, true}, {" 7 ", 7, true},
		{"-1", 0, false}, {`"41"`, 0, false}, {"1.5", 0, false}, {"18446744073709551616", 0, false},
	} {
		seq, ok := sinceOf([]byte(tt.raw))
		if seq != tt.seq || ok != tt.okay {
			t.Errorf("sinceOf(%q) = %d, %v; want %d, %v", tt.raw, seq, ok, tt.seq, tt.okay)
		}
	}
}
