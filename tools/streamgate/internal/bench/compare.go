package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// The systems Compare knows, in the order it runs them.
const (
	SystemDirect          = "direct"
	SystemGRPCGateway     = "grpc-gateway"
	SystemReverseProxy    = "reverse-proxy"
	SystemStreamgate      = "streamgate"
	SystemStreamgateCache = "streamgate-cache"
	// SystemStreamgateNATS is SystemStreamgate with the service on the
	// NATS transport (a NATS server embedded in the service's process).
	SystemStreamgateNATS = "streamgate-nats"
	// SystemNodeSocket and SystemNodeHTTP are one Node handler behind the
	// two hops (NodeSystems).
	SystemNodeSocket = "node-socket"
	SystemNodeHTTP   = "node-http"
	// SystemStreamgateWarn and SystemStreamgateCacheWarn are
	// SystemStreamgate and SystemStreamgateCache with the gateway at
	// -log-level warn, whatever Options.GatewayLogLevel says: beside
	// their peers in one run they show what the access log costs
	// (WarnSystems).
	SystemStreamgateWarn      = "streamgate-warn"
	SystemStreamgateCacheWarn = "streamgate-cache-warn"
)

// warnPeers maps each WarnSystems system to its peer at
// Options.GatewayLogLevel.
var warnPeers = map[string]string{
	SystemStreamgateWarn:      SystemStreamgate,
	SystemStreamgateCacheWarn: SystemStreamgateCache,
}

// KnownSystems lists every system Compare runs: Systems, NodeSystems
// and WarnSystems.
func KnownSystems() []string { return slices.Concat(Systems(), NodeSystems(), WarnSystems()) }

// WarnSystems are the streamgate systems again with the gateway logging
// at warn (no line per request); they run only when named in Systems.
func WarnSystems() []string { return []string{SystemStreamgateWarn, SystemStreamgateCacheWarn} }

// NodeScript is the Node peers' servers (nodeusers.js), from the
// repository's root, where bench compare runs.
const NodeScript = "tools/streamgate/internal/bench/nodeusers.js"

// NodeSystems are the peers that run the same Node handler behind the
// streamgate gateway on its socket (node-socket) and behind
// httputil.ReverseProxy over HTTP/JSON (node-http). They need node and
// services/node's packages, so they run only when named in Systems.
func NodeSystems() []string { return []string{SystemNodeSocket, SystemNodeHTTP} }

// Systems lists every system's name, in order; the first is the baseline
// the others are compared with.
func Systems() []string {
	return []string{SystemDirect, SystemGRPCGateway, SystemReverseProxy, SystemStreamgate, SystemStreamgateNATS, SystemStreamgateCache}
}

// titles say what each system is, in tables and charts.
var titles = map[string]string{
	SystemDirect:              "direct handler (no hop)",
	SystemGRPCGateway:         "grpc-gateway → unary gRPC",
	SystemReverseProxy:        "httputil.ReverseProxy → HTTP/JSON",
	SystemStreamgate:          "streamgate, cache and coalescing off",
	SystemStreamgateCache:     "streamgate, cache on",
	SystemStreamgateNATS:      "streamgate over NATS (embedded server), cache and coalescing off",
	SystemNodeSocket:          "streamgate → a Node service (socket), cache and coalescing off",
	SystemNodeHTTP:            "httputil.ReverseProxy → the Node handler over HTTP/JSON",
	SystemStreamgateWarn:      "streamgate, cache and coalescing off, log at warn",
	SystemStreamgateCacheWarn: "streamgate, cache on, log at warn",
}

// Options say what to compare and how hard to load it.
type Options struct {
	// Command starts a server: Command plus Serve's arguments run it
	// (e.g. the streamgate binary, "bench", "serve"). Required.
	Command []string
	// Systems to compare, from Systems(); default all. The first is the
	// baseline of the ratios.
	Systems []string
	// Rounds is how many times each system runs, alternating
	// (A B C A B C); default 1.
	Rounds int
	// Connections and Duration are the load of each run (closed loop);
	// defaults 64 and 8s.
	Connections int
	Duration    time.Duration
	// Warmup is a load run before each measured one; 0 skips it (every
	// user is still read once, which also fills the cache).
	Warmup time.Duration
	// Users is how many users the systems serve; default 1000.
	Users int
	// Progress, if set, receives a line per run.
	Progress io.Writer
	// ServerCPUs, when set, pins every server process to these CPUs
	// (taskset -c ServerCPUs), e.g. "1" while the load runs on "0";
	// SplitCPUs gives the usual split.
	ServerCPUs string
	// LoadCommand, when set, runs the load generator as a process of its
	// own: LoadCommand plus Load's flags (e.g. the streamgate binary,
	// "bench", "load"). Default: the load runs in this process.
	LoadCommand []string
	// LoadCPUs, when set, pins the load process (or wrk) to these CPUs.
	LoadCPUs string
	// WRK, when set, is the path of a wrk (4.x) that loads the systems
	// instead (on LoadCPUs, one thread per CPU, whole seconds); its
	// latencies are rebuilt from its percentiles.
	WRK string
	// Node is the command that runs nodeusers.js (NodeSystems); default
	// node and NodeScript.
	Node []string
	// GatewayLogLevel is the streamgate gateways' log level, their lines
	// written as `streamgate gateway` writes them (ServeOptions.LogLevel);
	// the zero value is info, the gateway's default.
	GatewayLogLevel slog.Level
	// FixedRate, when not 0, runs each system once more after the
	// rounds, in turn, at a fixed rate (open loop: requests sent on
	// schedule whatever the answers take), with the load process or in
	// this process, never wrk, which cannot hold a rate: FixedRate
	// requests per second, or with FixedRateHalf half the rate direct
	// reached over the rounds (direct must be among Systems). The
	// latencies at that rate are each SystemResult's Fixed.
	FixedRate int
}

// FixedRateHalf is Options.FixedRate's half of the direct handler's
// rate, measured in the same run.
const FixedRateHalf = -1

// FixedResult is what a system's run at the fixed rate measured.
type FixedResult struct {
	Rate     int // requests per second asked
	Requests int64
	Errors   int64
	Elapsed  time.Duration
	Latency  *load.Histogram
}

// Result is what Compare measured, system by system.
type Result struct {
	Options Options
	Systems []*SystemResult
	Date    time.Time
	NumCPU  int
}

// SystemResult is one system's runs added up.
type SystemResult struct {
	Name  string
	Title string
	// Requests, Errors and Elapsed add up the measured runs.
	Requests int64
	Errors   int64
	Elapsed  time.Duration
	// RoundRates are each run's requests per second, RoundCPU each
	// run's CPU time (all the system's processes) per request.
	RoundRates []float64
	RoundCPU   []time.Duration
	// Latency merges every run's latencies.
	Latency *load.Histogram
	// CPU is each process's CPU time during the measured runs, by role:
	// "server" for a single process, else "gateway" and "service".
	CPU map[string]time.Duration
	// LoadCPU is the load generator's (this process's) CPU time.
	LoadCPU time.Duration
	// Fixed is the run at Options.FixedRate; nil without one.
	Fixed *FixedResult
}

// RequestsPerSecond over all the system's runs.
func (s *SystemResult) RequestsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Requests) / s.Elapsed.Seconds()
}

// CPUPerRequest is d shared out over the system's requests.
func (s *SystemResult) CPUPerRequest(d time.Duration) time.Duration {
	if s.Requests == 0 {
		return 0
	}
	return d / time.Duration(s.Requests)
}

// TotalCPU adds up the system's processes.
func (s *SystemResult) TotalCPU() time.Duration {
	var t time.Duration
	for _, d := range s.CPU {
		t += d
	}
	return t
}

// Compare runs each system in turn, Rounds times, and measures them.
func Compare(ctx context.Context, o Options) (*Result, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "streamgate-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	r := &runner{o: o, dir: dir, key: randomKey(), serviceKey: randomKey()}
	if o.WRK != "" {
		if r.wrkScript, err = writeWRKScript(dir); err != nil {
			return nil, err
		}
	}
	res := &Result{Options: o, Date: time.Now().UTC(), NumCPU: runtime.NumCPU()}
	bySystem := map[string]*SystemResult{}
	for _, name := range o.Systems {
		s := &SystemResult{Name: name, Title: titles[name], Latency: load.NewHistogram(), CPU: map[string]time.Duration{}}
		bySystem[name] = s
		res.Systems = append(res.Systems, s)
	}
	for round := 1; round <= o.Rounds; round++ {
		for _, name := range o.Systems {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := r.run(ctx, name, bySystem[name]); err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round, name, err)
			}
			if o.Progress != nil {
				s := bySystem[name]
				fmt.Fprintf(o.Progress, "round %d  %-21s %9.1f req/s %7s CPU µs/req\n", round, name,
					s.RoundRates[len(s.RoundRates)-1], micros(s.RoundCPU[len(s.RoundCPU)-1]))
			}
		}
	}
	if o.FixedRate == 0 {
		return res, nil
	}
	rate := o.FixedRate
	if rate == FixedRateHalf {
		rate = int(bySystem[SystemDirect].RequestsPerSecond() / 2)
	}
	for _, name := range o.Systems {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := bySystem[name]
		if err := r.runFixed(ctx, name, s, max(rate, 1)); err != nil {
			return nil, fmt.Errorf("fixed rate, %s: %w", name, err)
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "fixed %d req/s  %-21s reached %.0f req/s, p50 %s p99 %s\n", s.Fixed.Rate, name,
				ratio(float64(s.Fixed.Requests), s.Fixed.Elapsed.Seconds()),
				load.FormatLatency(s.Fixed.Latency.Percentile(50)), load.FormatLatency(s.Fixed.Latency.Percentile(99)))
		}
	}
	return res, nil
}

func (o *Options) fill() error {
	if len(o.Command) == 0 {
		return errors.New("bench: no command to start the servers with")
	}
	if len(o.Systems) == 0 {
		o.Systems = Systems()
	}
	known := KnownSystems()
	for _, s := range o.Systems {
		if !slices.Contains(known, s) {
			return fmt.Errorf("bench: unknown system %q; known: %s", s, strings.Join(known, ", "))
		}
		if len(o.Node) == 0 && slices.Contains(NodeSystems(), s) {
			node, err := exec.LookPath("node")
			if err != nil {
				return fmt.Errorf("bench: %s needs node (Node.js ≥ 20) on PATH", s)
			}
			if _, err := os.Stat(NodeScript); err != nil {
				return fmt.Errorf("bench: %s needs %s: run bench compare from the repository's root", s, NodeScript)
			}
			o.Node = []string{node, NodeScript}
		}
	}
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.FixedRate < 0 && (o.FixedRate != FixedRateHalf || !slices.Contains(o.Systems, SystemDirect)) {
		return fmt.Errorf("bench: a fixed rate of half direct's needs %s among the systems", SystemDirect)
	}
	if o.Connections <= 0 {
		o.Connections = 64
	}
	if o.Duration <= 0 {
		o.Duration = 8 * time.Second
	}
	if o.Users <= 0 {
		o.Users = 1000
	}
	return checkPinning(o.ServerCPUs, o.LoadCPUs)
}

// runner starts systems and loads them.
type runner struct {
	o               Options
	dir             string // the gateway configurations
	wrkScript       string // with WRK: the script's path
	key, serviceKey string
}

// session starts one system, checks its answers, runs fn with its
// processes and URL, and stops it.
func (r *runner) session(ctx context.Context, name string, fn func(procs []*process, url string) error) (err error) {
	procs, url, err := r.start(name)
	defer func() {
		for _, p := range slices.Backward(procs) {
			if stopErr := p.stop(); err == nil {
				err = stopErr
			}
		}
	}()
	if err != nil {
		return err
	}
	if err := Check(ctx, url, r.key, Users(r.o.Users)); err != nil {
		return err
	}
	return fn(procs, url)
}

// run starts one system and measures it under the closed-loop load.
func (r *runner) run(ctx context.Context, name string, s *SystemResult) error {
	return r.session(ctx, name, func(procs []*process, url string) error { return r.measure(ctx, procs, url, s) })
}

// runFixed starts one system and measures its latencies at rate requests
// per second, with the load process (LoadCommand) or in this process.
func (r *runner) runFixed(ctx context.Context, name string, s *SystemResult, rate int) error {
	return r.session(ctx, name, func(_ []*process, url string) error {
		measure := r.measureInProcess
		if len(r.o.LoadCommand) > 0 {
			measure = r.measureOwnProcess
		}
		rep, err := measure(ctx, url, rate, func() error { return nil })
		if err != nil {
			return err
		}
		s.Fixed = &FixedResult{Rate: rate, Requests: rep.Requests, Errors: rep.Errors, Elapsed: rep.Elapsed, Latency: rep.Latency}
		return nil
	})
}

// measure loads a started system (closed loop) and adds what it
// measured to s.
func (r *runner) measure(ctx context.Context, procs []*process, url string, s *SystemResult) error {
	before := make([]time.Duration, len(procs))
	mark := func() error {
		for i, p := range procs {
			d, err := p.cpuTime()
			if err != nil {
				return err
			}
			before[i] = d
		}
		return nil
	}
	measure := r.measureInProcess
	switch {
	case r.o.WRK != "":
		measure = r.measureWRK
	case len(r.o.LoadCommand) > 0:
		measure = r.measureOwnProcess
	}
	rep, err := measure(ctx, url, 0, mark)
	if err != nil {
		return err
	}
	var spent time.Duration
	for i, p := range procs {
		after, err := p.cpuTime()
		if err != nil {
			return err
		}
		s.CPU[p.role] += after - before[i]
		spent += after - before[i]
	}
	s.RoundCPU = append(s.RoundCPU, spent/time.Duration(max(rep.Requests, 1)))
	s.LoadCPU += rep.CPU
	s.Requests += rep.Requests
	s.Errors += rep.Errors
	s.Elapsed += rep.Elapsed
	s.RoundRates = append(s.RoundRates, ratio(float64(rep.Requests), rep.Elapsed.Seconds()))
	s.Latency.Merge(rep.Latency)
	return nil
}

// start starts a system's processes, service first, and returns them and
// the base URL clients call.
func (r *runner) start(name string) ([]*process, string, error) {
	env := []string{EnvKey + "=" + r.key, EnvServiceKey + "=" + r.serviceKey}
	users := fmt.Sprintf("-users=%d", r.o.Users)
	var procs []*process
	// two starts the service (the binary's bench serve svcKind, or what
	// svc says), then the gateway gwKind in front of it.
	two := func(svc []string, gwKind string, backend func(addr string) []string) ([]*process, string, error) {
		p, err := startProcess(r.pinned(svc[:1]...), env, "service", append(svc[1:], users)...)
		if err != nil {
			return nil, "", err
		}
		procs = append(procs, p)
		args := append([]string{gwKind, users}, backend(p.addr)...)
		if gwKind == KindStreamgateGateway {
			args = append(args, "-log-level="+r.o.gatewayLogLevel(name).String())
		}
		gw, err := startProcess(r.pinned(r.o.Command...), env, "gateway", args...)
		if err != nil {
			return procs, "", err
		}
		return append(procs, gw), "http://" + gw.addr, nil
	}
	serve := func(kind string) []string { return append(slices.Clone(r.o.Command), kind) }
	node := func(mode string) []string { return append(slices.Clone(r.o.Node), mode) }
	proxyTo := func(addr string) []string { return []string{"-backend", "http://" + addr} }
	var cfgErr error
	streamgateTo := func(cache, overNATS bool) func(addr string) []string {
		return func(addr string) []string {
			path := filepath.Join(r.dir, name+".yaml")
			cfgErr = os.WriteFile(path, []byte(gatewayConfig(addr, cache, overNATS)), 0o600)
			return []string{"-config", path}
		}
	}
	// viaStreamgate starts svc behind the streamgate gateway, which
	// reaches it at its ready address: a socket, or with overNATS a NATS
	// server's URL.
	viaStreamgate := func(svc []string, cache, overNATS bool) ([]*process, string, error) {
		procs, url, err := two(svc, KindStreamgateGateway, streamgateTo(cache, overNATS))
		if err == nil {
			err = cfgErr
		}
		return procs, url, err
	}
	switch name {
	case SystemDirect:
		p, err := startProcess(r.pinned(r.o.Command...), env, "server", KindDirect, users)
		if err != nil {
			return nil, "", err
		}
		return []*process{p}, "http://" + p.addr, nil
	case SystemGRPCGateway:
		return two(serve(KindGRPCUsers), KindGRPCGateway, func(addr string) []string { return []string{"-backend", addr} })
	case SystemReverseProxy:
		return two(serve(KindHTTPUsers), KindReverseProxy, proxyTo)
	case SystemStreamgate, SystemStreamgateCache, SystemStreamgateWarn, SystemStreamgateCacheWarn:
		return viaStreamgate(serve(KindStreamgateUsers), name == SystemStreamgateCache || name == SystemStreamgateCacheWarn, false)
	case SystemStreamgateNATS:
		return viaStreamgate(serve(KindStreamgateUsersNATS), false, true)
	case SystemNodeSocket:
		return viaStreamgate(node("socket"), false, false)
	case SystemNodeHTTP:
		return two(node("http"), KindReverseProxy, proxyTo)
	}
	return nil, "", fmt.Errorf("unknown system %q", name)
}

// gatewayLogLevel is the level the streamgate gateway of system logs at.
func (o Options) gatewayLogLevel(system string) slog.Level {
	if _, ok := warnPeers[system]; ok {
		return slog.LevelWarn
	}
	return o.GatewayLogLevel
}

// pinned is command run on ServerCPUs (through taskset), or command.
func (r *runner) pinned(command ...string) []string {
	return pinnedTo(r.o.ServerCPUs, command...)
}

// gatewayConfig routes GET /v1/users/{id} to the users service at addr
// (its socket, or with overNATS the URL of the NATS server it serves on),
// for the admin API key in EnvKey: with the cache (a TTL longer than any
// run, coalescing on) or with neither.
func gatewayConfig(addr string, cache, overNATS bool) string {
	route := "{service: users, crud: [get], cache: false, coalesce: false}"
	if cache {
		route = "{service: users, crud: [get], cache_ttl: 1h}"
	}
	service := fmt.Sprintf("{target: %q, key_env: %s}", addr, EnvServiceKey)
	if overNATS {
		service = fmt.Sprintf("{transport: nats, nats_url: %q, key_env: %s}", addr, EnvServiceKey)
	}
	return fmt.Sprintf(`auth:
  api_keys:
    - {name: bench, secret_env: %s, roles: [admin]}
services:
  users: %s
versions:
  v1:
    resources:
      users: %s
`, EnvKey, service, route)
}

func randomKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
