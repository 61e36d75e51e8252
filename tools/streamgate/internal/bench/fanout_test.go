package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/bench"
)

// TestFanoutCountsAddUp runs the real gateway and publishing service in
// one process and 50 WebSocket subscribers over two topics in another,
// at two rates for 2s each, and checks that every state published
// reached every subscriber once, in order, the last one last. It never
// judges speed.
func TestFanoutCountsAddUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes and 50 WebSockets")
	}
	t.Setenv(envServe, "1")
	var progress bytes.Buffer
	profile := filepath.Join(t.TempDir(), "server.pprof")
	for _, conflate := range []bool{true, false} {
		o := bench.FanoutOptions{
			Command: []string{os.Args[0]}, SubscribersCommand: []string{os.Args[0], "subscribers"},
			Subscribers: 50, Topics: 2, Rates: []float64{5, 20}, Duration: 2 * time.Second, Conflate: conflate, Progress: &progress,
		}
		if conflate {
			o.ServerCPUProfile = profile
		}
		res, err := bench.Fanout(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if conflate {
			if st, err := os.Stat(profile); err != nil || st.Size() == 0 {
				t.Errorf("the server's CPU profile: %v", err)
			}
		}
		if want := map[bool]string{true: "items", false: "ledger"}[conflate]; res.Resource != want {
			t.Errorf("conflate %v: resource %s, want %s", conflate, res.Resource, want)
		}
		if len(res.Rows) != 2 {
			t.Fatalf("%d rows, want 2", len(res.Rows))
		}
		for _, row := range res.Rows {
			states := int(row.Rate * 2)
			if row.States != states || row.Published != 2*states {
				t.Errorf("rate %v: %d states a topic, %d published; want %d and %d", row.Rate, row.States, row.Published, states, 2*states)
			}
			if row.Connected != 50 || row.Refused != 0 || row.Latest != 50 || row.CutOff != 0 || row.Broken != 0 || row.Unreadable != 0 {
				t.Errorf("rate %v: %d connected, %d refused (%s), %d on the last state, %d cut off, %d broken, %d unreadable",
					row.Rate, row.Connected, row.Refused, row.FirstRefusal, row.Latest, row.CutOff, row.Broken, row.Unreadable)
			}
			// Nothing overloads 50 subscribers: every state is delivered,
			// none conflated away.
			if row.Deliveries != int64(50*states) || row.Lost != 0 || row.Duplicates != 0 || row.OutOfOrder != 0 || row.Skipped != 0 || row.Gapped != 0 {
				t.Errorf("rate %v: %d deliveries (want %d), %d lost, %d dup, %d out of order, %d skipped, %d gapped",
					row.Rate, row.Deliveries, 50*states, row.Lost, row.Duplicates, row.OutOfOrder, row.Skipped, row.Gapped)
			}
			if row.Latency.Count() != row.Deliveries || row.Latency.Percentile(50) <= 0 {
				t.Errorf("rate %v: %d latencies, p50 %v", row.Rate, row.Latency.Count(), row.Latency.Percentile(50))
			}
			if row.Elapsed() < time.Second || row.DeliveriesPerSecond() <= 0 {
				t.Errorf("rate %v: elapsed %v, %v deliveries/s", row.Rate, row.Elapsed(), row.DeliveriesPerSecond())
			}
		}
		var md bytes.Buffer
		if err := res.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		if rows := strings.Count(md.String(), "\n| "); rows != 3 {
			t.Errorf("markdown: %d table lines, want a header and 2 rows:\n%s", rows, md.String())
		}
	}
}

// TestFanoutAgainstTheFloor runs a rate against the gateway and then
// the floor, the bare broadcaster: the floor delivers every state to
// every subscriber too, its CPU is measured, and the table gives the
// gateway's CPU per delivery as a multiple of it. It never judges speed.
func TestFanoutAgainstTheFloor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes and 100 WebSockets")
	}
	t.Setenv(envServe, "1")
	res, err := bench.Fanout(context.Background(), bench.FanoutOptions{
		Command: []string{os.Args[0]}, SubscribersCommand: []string{os.Args[0], "subscribers"},
		// 5,000 deliveries: enough CPU for /proc's 10 ms ticks to see.
		Subscribers: 50, Topics: 2, Rates: []float64{100}, Duration: time.Second, Conflate: true, Floor: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	row := res.Rows[0]
	f := row.Floor
	if f == nil {
		t.Fatal("no floor run")
	}
	if f.Rate != row.Rate || f.Connected != 50 || f.Latest != 50 || f.Deliveries != 50*100 || f.Lost != 0 || f.Duplicates != 0 || f.OutOfOrder != 0 || f.Unreadable != 0 || f.Broken != 0 {
		t.Errorf("the floor: rate %v, %d connected, %d on the last state, %d deliveries (want 5000), %d lost, %d dup, %d out of order, %d unreadable, %d broken",
			f.Rate, f.Connected, f.Latest, f.Deliveries, f.Lost, f.Duplicates, f.OutOfOrder, f.Unreadable, f.Broken)
	}
	if f.ServerCPU <= 0 || row.CPUOverFloor() <= 0 {
		t.Errorf("the floor's CPU %v, the gateway's × floor %v", f.ServerCPU, row.CPUOverFloor())
	}
	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| floor's CPU / 100k deliveries | × floor |", fmt.Sprintf("| **%.2f** |\n", row.CPUOverFloor()), "ran against the floor"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

func TestFanoutRefusesBadOptions(t *testing.T) {
	cmd := []string{os.Args[0]}
	base := bench.FanoutOptions{Command: cmd, SubscribersCommand: cmd, Subscribers: 10, Rates: []float64{5}, Duration: time.Second}
	cases := []struct {
		name string
		edit func(*bench.FanoutOptions)
		want string
	}{
		{"no subscribers", func(o *bench.FanoutOptions) { o.Subscribers = 0 }, "-subscribers must be at least 1"},
		{"more topics than subscribers", func(o *bench.FanoutOptions) { o.Topics = 11 }, "-topics must be 1 to -subscribers (10)"},
		{"no rate", func(o *bench.FanoutOptions) { o.Rates = nil }, "give a -rate"},
		{"zero rate", func(o *bench.FanoutOptions) { o.Rates = []float64{0} }, "rate 0: want a positive number"},
		{"no state in the duration", func(o *bench.FanoutOptions) { o.Rates = []float64{0.1} }, "publishes 0 states a topic"},
		{"no duration", func(o *bench.FanoutOptions) { o.Duration = 0 }, "-duration must be positive"},
		{"bad CPU list", func(o *bench.FanoutOptions) { o.ServerCPUs = "x" }, `CPU list "x"`},
		{"no command", func(o *bench.FanoutOptions) { o.Command = nil }, "no command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base
			c.edit(&o)
			if _, err := bench.Fanout(context.Background(), o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

func TestParseRates(t *testing.T) {
	if r, err := bench.ParseRates("5, 12.5,100"); err != nil || len(r) != 3 || r[1] != 12.5 {
		t.Fatalf("got %v, %v", r, err)
	}
	for _, bad := range []string{"", "abc", "5,,10", "-1", "0", "NaN", "Inf"} {
		if _, err := bench.ParseRates(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSubscribersRefuseBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-url", "http://127.0.0.1:1", "-subscribers", "0", "-states", "5"},
		{"-url", "ws://127.0.0.1:1", "-subscribers", "1", "-states", "5"},
		{"-url", "http://192.0.2.1:80", "-subscribers", "1", "-states", "5"},
		{"-url", "http://127.0.0.1:1", "-subscribers", "1", "-states", "0"},
		{"-url", "http://127.0.0.1:1", "-subscribers", "1", "-states", "5", "-wait", "0s"},
	} {
		var out, errOut bytes.Buffer
		if err := bench.Subscribers(context.Background(), args, &out, &errOut); err == nil || out.Len() != 0 {
			t.Errorf("%v: err %v, stdout %q", args, err, out.String())
		}
	}
}
