package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/tools/streamgate/internal/bench"
)

// envServe makes the test binary a bench server (or, with "load" first,
// the load process; with "subscribers", bench fanout's subscribers):
// Compare and Fanout start it again with Serve's (Load's, Subscribers')
// arguments, as the streamgate binary starts itself.
const envServe = "STREAMGATE_BENCH_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		var err error
		switch {
		case len(os.Args) > 1 && os.Args[1] == "load":
			err = bench.Load(ctx, os.Args[2:], os.Stdout, os.Stderr)
		case len(os.Args) > 1 && os.Args[1] == "subscribers":
			err = bench.Subscribers(ctx, os.Args[2:], os.Stdout, os.Stderr)
		default:
			err = bench.Serve(ctx, os.Args[1:], os.Stdout, os.Stderr)
		}
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestCompareSmoke runs every system for about a second, one round, and
// checks that each answered every user correctly and served the load
// without errors. It never judges speed.
func TestCompareSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nine processes")
	}
	t.Setenv(envServe, "1")
	var progress bytes.Buffer
	res, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0]}, Rounds: 1, Connections: 4, Duration: time.Second, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Systems) != len(bench.Systems()) {
		t.Fatalf("%d systems measured, want %d", len(res.Systems), len(bench.Systems()))
	}
	for _, s := range res.Systems {
		if s.Requests == 0 || s.Errors != 0 || s.Latency.Count() != s.Requests || len(s.RoundRates) != 1 {
			t.Errorf("%s: %d requests, %d errors, %d latencies, rounds %v", s.Name, s.Requests, s.Errors, s.Latency.Count(), s.RoundRates)
		}
		roles := []string{"gateway", "service"}
		if s.Name == bench.SystemDirect {
			roles = []string{"server"}
		}
		if len(s.CPU) != len(roles) {
			t.Errorf("%s: CPU of %v, want %v", s.Name, s.CPU, roles)
		}
		for _, role := range roles {
			if _, ok := s.CPU[role]; !ok {
				t.Errorf("%s: no CPU time for its %s", s.Name, role)
			}
		}
	}
	rows := res.Rows()
	for _, row := range rows {
		if row.TotalCPUPerRequest <= 0 {
			t.Errorf("%s: CPU per request %v", row.Name, row.TotalCPUPerRequest)
		}
	}
	if rows[0].RequestsRatio != 1 || rows[0].P99Ratio != 1 || rows[0].CPURatio != 1 {
		t.Errorf("the baseline's ratios to itself: %+v", rows[0])
	}
	for _, row := range rows[1:] {
		if row.RequestsRatio <= 0 || row.P50Ratio <= 0 || row.CPURatio <= 0 {
			t.Errorf("%s: ratios %+v", row.Name, row)
		}
	}
	if got := strings.Count(progress.String(), "round 1 "); got != len(bench.Systems()) {
		t.Errorf("progress:\n%s", progress.String())
	}

	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| system | CPU µs / req (gateway + service) | × direct | req/s | × direct |", "load: in the comparing process", "direct handler (no hop)", "grpc-gateway → unary gRPC",
		"httputil.ReverseProxy → HTTP/JSON", "streamgate, cache and coalescing off", "streamgate over NATS (embedded server)", "streamgate, cache on", "streamgate gateways log at info", "nproc "} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var svg bytes.Buffer
	if err := res.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	if n := countElements(t, &svg, "polyline"); n != len(bench.Systems()) {
		t.Errorf("chart has %d curves, want %d", n, len(bench.Systems()))
	}
}

func countElements(t *testing.T, r io.Reader, name string) int {
	t.Helper()
	dec := xml.NewDecoder(r)
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			n++
		}
	}
}

func TestCompareRefusesBadOptions(t *testing.T) {
	t.Parallel()
	if _, err := bench.Compare(context.Background(), bench.Options{}); err == nil || !strings.Contains(err.Error(), "command") {
		t.Fatalf("no command: %v", err)
	}
	_, err := bench.Compare(context.Background(), bench.Options{Command: []string{"x"}, Systems: []string{"direct", "nginx"}})
	if err == nil || !strings.Contains(err.Error(), `unknown system "nginx"`) {
		t.Fatalf("unknown system: %v", err)
	}
	_, err = bench.Compare(context.Background(), bench.Options{Command: []string{"x"}, Systems: []string{"streamgate"}, FixedRate: bench.FixedRateHalf})
	if err == nil || !strings.Contains(err.Error(), "needs direct") {
		t.Fatalf("half of direct's rate without direct: %v", err)
	}
}

// TestCompareReportsAServerThatFails starts a "server" that exits at once.
func TestCompareReportsAServerThatFails(t *testing.T) {
	t.Setenv(envServe, "1")
	// The server's kind becomes "-no-such-flag": Serve refuses it and the
	// process exits 1 before it is ready.
	_, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0], "-no-such-flag"}, Systems: []string{bench.SystemDirect}, Duration: time.Second,
	})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("err %v", err)
	}
}

func TestServeDirectInProcess(t *testing.T) {
	t.Setenv(bench.EnvKey, "k1")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- bench.Serve(ctx, []string{bench.KindDirect, "-users=20"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ready ")
	if !ok {
		t.Fatalf("first line %q", line)
	}
	if err := bench.Check(ctx, "http://"+addr, "k1", bench.Users(20)); err != nil {
		t.Fatal(err)
	}
	if err := bench.Check(ctx, "http://"+addr, "k1", bench.Users(21)); err == nil || !strings.Contains(err.Error(), "user 21: status 404") {
		t.Fatalf("user 21 of 20: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServeRefusesBadArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "name the server"},
		{[]string{"nginx"}, `unknown server "nginx"`},
		{[]string{bench.KindReverseProxy, "-backend", ":::"}, "not a URL"},
		{[]string{bench.KindStreamgateUsers}, "STREAMGATE_SERVICE_KEY"},
		{[]string{bench.KindStreamgateUsersNATS}, "STREAMGATE_SERVICE_KEY"},
		{[]string{bench.KindStreamgateGateway, "-log-level", "loud"}, "-log-level"},
	} {
		err := bench.Serve(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestCheckCatchesWrongAnswers(t *testing.T) {
	t.Parallel()
	want := bench.Users(3)
	serve := func(h http.HandlerFunc) string {
		ts := httptest.NewServer(h)
		t.Cleanup(ts.Close)
		return ts.URL
	}
	authed := func(next func(w http.ResponseWriter, id string)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-API-Key") != "k" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next(w, strings.TrimPrefix(r.URL.Path, "/v1/users/"))
		}
	}
	user := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"name":"User %s","email":"user%s@example.com","status":"active","created_at":%q}`,
			id, id, id, want[id[0]-'1'].CreatedAt)
	}
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    string // "" when the system is right
	}{
		{"bare user", authed(func(w http.ResponseWriter, id string) { io.WriteString(w, user(id)) }), ""},
		{"envelope", authed(func(w http.ResponseWriter, id string) { io.WriteString(w, `{"ok":true,"result":`+user(id)+`}`) }), ""},
		{"wrong name", authed(func(w http.ResponseWriter, id string) {
			io.WriteString(w, strings.Replace(user(id), "User", "Usr", 1))
		}), "answered"},
		{"not ok", authed(func(w http.ResponseWriter, id string) { io.WriteString(w, `{"ok":false,"error":{}}`) }), "envelope without a result"},
		{"not JSON", authed(func(w http.ResponseWriter, id string) { io.WriteString(w, "hello") }), "not a JSON object"},
		{"error status", authed(func(w http.ResponseWriter, id string) { w.WriteHeader(http.StatusInternalServerError) }), "status 500"},
		{"no auth", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, user("1")) }, "without an API key: status 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := bench.Check(context.Background(), serve(tc.handler), "k", want)
			if tc.want == "" && err != nil {
				t.Fatalf("a right system failed the check: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestCompareNodePeers runs the Node handler behind both hops for about a
// second each: every user answered correctly (Check), the load served
// without errors, both processes' CPU measured. It never judges speed.
func TestCompareNodePeers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH: the Node peers need Node.js 20")
	}
	if _, err := os.Stat("../../../../services/node/node_modules/@grpc/grpc-js"); err != nil {
		t.Skip("services/node/node_modules is missing: run `npm ci` in services/node")
	}
	t.Setenv(envServe, "1")
	res, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0]}, Node: []string{node, "nodeusers.js"}, Systems: bench.NodeSystems(),
		Rounds: 1, Connections: 4, Duration: time.Second, Users: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Systems {
		if s.Requests == 0 || s.Errors != 0 || len(s.CPU) != 2 {
			t.Errorf("%s: %d requests, %d errors, CPU of %v", s.Name, s.Requests, s.Errors, s.CPU)
		}
	}
}

// TestCompareLoadInItsOwnProcess runs the stream and the NATS transport
// for half a second each with the load in a process of its own, the load
// and the servers pinned to the default halves of the machine: every
// answer checked, no errors, the load process's CPU and latencies
// reported, the ratios taken against the stream. It never judges speed.
func TestCompareLoadInItsOwnProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes")
	}
	t.Setenv(envServe, "1")
	loadCPUs, serverCPUs := bench.SplitCPUs()
	res, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0]}, LoadCommand: []string{os.Args[0], "load"},
		LoadCPUs: loadCPUs, ServerCPUs: serverCPUs,
		Systems: []string{bench.SystemStreamgate, bench.SystemStreamgateNATS},
		Rounds:  1, Connections: 4, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond, Users: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Systems {
		if s.Requests == 0 || s.Errors != 0 || s.Latency.Count() != s.Requests || s.LoadCPU <= 0 || len(s.CPU) != 2 ||
			len(s.RoundCPU) != 1 || s.RoundCPU[0] <= 0 {
			t.Errorf("%s: %d requests, %d errors, %d latencies, load CPU %v, CPU of %v, CPU per request by round %v",
				s.Name, s.Requests, s.Errors, s.Latency.Count(), s.LoadCPU, s.CPU, s.RoundCPU)
		}
	}
	var md bytes.Buffer
	if err := res.WriteText(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| × streamgate |", "load: its own process", "streamgate over NATS (embedded server)", "CPU µs / req by round:\n  streamgate "} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if serverCPUs != "" && !strings.Contains(md.String(), "servers on CPUs "+serverCPUs) {
		t.Errorf("markdown does not say where the servers ran:\n%s", md.String())
	}
}

// TestCompareAtAFixedRate runs direct and the cached gateway closed
// loop for half a second each, then each again at half direct's rate,
// open loop, with the load in its own process (the command's way) and in
// this one: each system's latencies at that rate are measured from about
// rate × duration requests, without errors, and the table gains their
// columns, the p99 as a ratio to direct's. It never judges speed.
func TestCompareAtAFixedRate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes")
	}
	t.Setenv(envServe, "1")
	for _, own := range []bool{true, false} {
		o := bench.Options{
			Command: []string{os.Args[0]}, Systems: []string{bench.SystemDirect, bench.SystemStreamgateCache},
			Rounds: 1, Connections: 4, Duration: 500 * time.Millisecond, Users: 50, FixedRate: bench.FixedRateHalf,
		}
		if own {
			o.LoadCommand = []string{os.Args[0], "load"}
		}
		res, err := bench.Compare(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		rate := int(res.Systems[0].RequestsPerSecond() / 2)
		for _, s := range res.Systems {
			f := s.Fixed
			if f == nil {
				t.Fatalf("%s: no fixed-rate run", s.Name)
			}
			// rate × the phase's duration are sent, however long the
			// answers take on a busy machine (Elapsed includes the wait
			// for the last ones).
			want := float64(rate) * o.Duration.Seconds()
			if f.Rate != rate || f.Errors != 0 || f.Latency.Count() != f.Requests || float64(f.Requests) < want*0.8 || float64(f.Requests) > want*1.2+2 {
				t.Errorf("%s: rate %d (want %d), %d requests in %v, %d errors, %d latencies", s.Name, f.Rate, rate, f.Requests, f.Elapsed, f.Errors, f.Latency.Count())
			}
		}
		rows := res.Rows()
		if rows[0].FixedP99Ratio != 1 || rows[1].FixedP99Ratio <= 0 || rows[1].FixedP50 <= 0 || rows[1].FixedP99 < rows[1].FixedP50 || rows[1].FixedReached <= 0 {
			t.Errorf("fixed-rate figures: %+v", rows)
		}
		var md bytes.Buffer
		if err := res.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			fmt.Sprintf("at a fixed rate of %d req/s (half of direct's rate over the rounds", rate),
			fmt.Sprintf("| errors | req/s reached | p50 @ %d req/s | p99 @ %d req/s | × direct |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", rate, rate),
			"| **1.00** |\n",
		} {
			if !strings.Contains(md.String(), want) {
				t.Errorf("markdown lacks %q:\n%s", want, md.String())
			}
		}
	}
}

// TestCompareStatesTheAccessLogsCost runs the cached gateway at info and
// again at warn: the table then states what the line per request cost,
// from the two systems' CPU per request and req/s in the same run. It
// never judges speed.
func TestCompareStatesTheAccessLogsCost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes")
	}
	t.Setenv(envServe, "1")
	res, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0]}, Systems: []string{bench.SystemDirect, bench.SystemStreamgateCache, bench.SystemStreamgateCacheWarn},
		Rounds: 1, Connections: 4, Duration: 300 * time.Millisecond, Users: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Systems {
		if s.Requests == 0 || s.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", s.Name, s.Requests, s.Errors)
		}
	}
	costs := res.LogCosts()
	if len(costs) != 1 || costs[0].System != bench.SystemStreamgateCache || costs[0].Warn != bench.SystemStreamgateCacheWarn || costs[0].CPURatio <= 0 || costs[0].RequestsRatio <= 0 {
		t.Fatalf("log costs %+v", costs)
	}
	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("The access log at info: streamgate-cache costs **%+.1f%%** CPU per request", 100*(costs[0].CPURatio-1))
	for _, want := range []string{want, "against streamgate-cache-warn.", "| streamgate, cache on, log at warn |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
}

// TestCompareWithWRK loads the direct handler with wrk for a second, when
// wrk is installed.
func TestCompareWithWRK(t *testing.T) {
	if testing.Short() {
		t.Skip("starts wrk and a server")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("wrk is not on PATH (apt-get install wrk)")
	}
	t.Setenv(envServe, "1")
	loadCPUs, serverCPUs := bench.SplitCPUs()
	res, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0]}, WRK: wrk, LoadCPUs: loadCPUs, ServerCPUs: serverCPUs,
		Systems: []string{bench.SystemDirect}, Rounds: 1, Connections: 4, Duration: time.Second, Users: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Systems[0]
	if s.Requests == 0 || s.Errors != 0 || s.Latency.Count() != s.Requests || s.LoadCPU <= 0 || s.Elapsed < time.Second/2 {
		t.Errorf("%d requests, %d errors, %d latencies, load CPU %v, elapsed %v", s.Requests, s.Errors, s.Latency.Count(), s.LoadCPU, s.Elapsed)
	}
	if p50, p99 := s.Latency.Percentile(50), s.Latency.Percentile(99); p50 <= 0 || p99 < p50 {
		t.Errorf("p50 %v, p99 %v", p50, p99)
	}
}

func TestCompareRefusesBadCPULists(t *testing.T) {
	t.Parallel()
	for _, o := range []bench.Options{
		{Command: []string{"x"}, LoadCPUs: "zero"},
		{Command: []string{"x"}, ServerCPUs: "3-1"},
		{Command: []string{"x"}, ServerCPUs: "1,"},
	} {
		if _, err := bench.Compare(context.Background(), o); err == nil || !strings.Contains(err.Error(), "CPU list") {
			t.Errorf("%+v: err %v", o, err)
		}
	}
}

// Pinning without taskset is refused before anything starts; the default
// split then pins nothing.
func TestComparePinningNeedsTaskset(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := bench.Compare(context.Background(), bench.Options{Command: []string{"x"}, ServerCPUs: "0"})
	if err == nil || !strings.Contains(err.Error(), "needs taskset") {
		t.Fatalf("err %v", err)
	}
	if load, servers := bench.SplitCPUs(); load != "" || servers != "" {
		t.Errorf("split without taskset: %q, %q", load, servers)
	}
}

func TestLoadRefusesBadArguments(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		nil,
		{"-url", "127.0.0.1:1"},
		{"-url", "http://127.0.0.1:1", "-c", "0"},
		{"-url", "http://127.0.0.1:1", "-duration", "0s"},
		{"-url", "http://127.0.0.1:1", "-rate", "-5"},
	} {
		if err := bench.Load(context.Background(), args, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "needs -url") {
			t.Errorf("%v: err %v", args, err)
		}
	}
	if err := bench.Load(context.Background(), []string{"-nope"}, io.Discard, io.Discard); err == nil {
		t.Error("an unknown flag was accepted")
	}
}

// TestCompareReportsALoadProcessThatFails: a load process that exits
// without a report fails the comparison with what it said.
func TestCompareReportsALoadProcessThatFails(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	t.Setenv(envServe, "1")
	_, err := bench.Compare(context.Background(), bench.Options{
		Command: []string{os.Args[0]}, LoadCommand: []string{os.Args[0], "load", "-no-such-flag"},
		Systems: []string{bench.SystemDirect}, Duration: 500 * time.Millisecond, Users: 10,
	})
	if err == nil || !strings.Contains(err.Error(), "the load process") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("err %v", err)
	}
}
