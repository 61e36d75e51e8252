package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
	"github.com/streamgate/streamgate/tools/streamgate/internal/subscribers"
)

// The load process's stdout: a line when the measured load starts, then
// one with what it measured (JSON) when it ends.
const (
	lineMeasuring = "measuring"
	lineMeasured  = "measured "
)

// loadGrace bounds how long a load process may take beyond its warm-up
// and measured load (starting, connecting, reporting).
const loadGrace = time.Minute

// LoadOptions are the load process's: bench compare runs this binary
// again (`streamgate bench load`) on its own CPUs to load one system.
// The API key comes from EnvKey.
type LoadOptions struct {
	URL         string        // the system's base URL
	Users       int           // GET /v1/users/{1..Users}, in turn
	Connections int           // closed loop, unless Rate
	Rate        int           // requests per second when > 0 (open loop)
	Warmup      time.Duration // unmeasured load first
	Duration    time.Duration // then the measured load
}

// Flags declares the load process's flags on fs, filling o.
func (o *LoadOptions) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.URL, "url", "", "the system's base URL (http://ADDR)")
	fs.IntVar(&o.Users, "users", 1000, "users read, in turn")
	fs.IntVar(&o.Connections, "c", 64, "connections (closed loop, unless -rate)")
	fs.IntVar(&o.Rate, "rate", 0, "requests per second, sent on schedule whatever the answers take (open loop); 0: closed loop")
	fs.DurationVar(&o.Warmup, "warmup", 0, "unmeasured load first")
	fs.DurationVar(&o.Duration, "duration", 8*time.Second, "measured load")
}

// loadResult is what the measured load did.
type loadResult struct {
	Requests int64           `json:"requests"`
	Errors   int64           `json:"errors"`
	Elapsed  time.Duration   `json:"elapsed_ns"`
	CPU      time.Duration   `json:"cpu_ns"` // the load generator's own
	Latency  *load.Histogram `json:"latency"`
}

// Load is the load process run with its arguments (see RunLoad).
func Load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o LoadOptions
	if err := parseFlags("bench load", args, stderr, o.Flags); err != nil {
		return err
	}
	return RunLoad(ctx, o, stdout)
}

// parseFlags parses a child process's args with the flags declare
// declares, its complaints on stderr.
func parseFlags(name string, args []string, stderr io.Writer, declare func(*flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	declare(fs)
	return fs.Parse(args)
}

// RunLoad loads o.URL for o.Warmup, writes "measuring" and a newline to
// stdout, loads it for o.Duration, and writes "measured " and what it
// measured as JSON on one line (the requests, errors, elapsed time, this
// process's CPU time during the measured load, and the latencies).
func RunLoad(ctx context.Context, o LoadOptions, stdout io.Writer) error {
	if !strings.HasPrefix(o.URL, "http://") || o.Users <= 0 || o.Connections <= 0 || o.Duration <= 0 || o.Rate < 0 {
		return errors.New("bench load: needs -url http://ADDR, positive -users, -c and -duration, and -rate ≥ 0")
	}
	lo := usersLoad(o.URL, os.Getenv(EnvKey), o.Users, o.Connections)
	lo.Rate = o.Rate
	if o.Warmup > 0 {
		lo.Duration = o.Warmup
		if _, err := load.Run(ctx, lo); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintln(stdout, lineMeasuring); err != nil {
		return err
	}
	start := rusage.CPU()
	lo.Duration = o.Duration
	rep, err := load.Run(ctx, lo)
	if err != nil {
		return err
	}
	b, err := json.Marshal(loadResult{
		Requests: rep.Requests, Errors: rep.Errors(), Elapsed: rep.Elapsed, CPU: rusage.CPU() - start, Latency: rep.Latency,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s%s\n", lineMeasured, b)
	return err
}

// usersLoad reads GET /v1/users/{1..users} from base with the API key.
func usersLoad(base, key string, users, conns int) load.Options {
	return load.Options{
		URL: base + "/v1/users/{id}", IDs: load.Range{From: 1, To: int64(users)},
		Header:      http.Header{"X-Api-Key": {key}},
		Connections: conns,
	}
}

// measureInProcess loads url from this process, at rate requests per
// second when rate > 0 (else closed loop); mark runs just before the
// measured load.
func (r *runner) measureInProcess(ctx context.Context, url string, rate int, mark func() error) (loadResult, error) {
	lo := usersLoad(url, r.key, r.o.Users, r.o.Connections)
	lo.Rate = rate
	if r.o.Warmup > 0 {
		lo.Duration = r.o.Warmup
		if _, err := load.Run(ctx, lo); err != nil {
			return loadResult{}, err
		}
	}
	if err := mark(); err != nil {
		return loadResult{}, err
	}
	start := rusage.CPU()
	lo.Duration = r.o.Duration
	rep, err := load.Run(ctx, lo)
	if err != nil {
		return loadResult{}, err
	}
	return loadResult{Requests: rep.Requests, Errors: rep.Errors(), Elapsed: rep.Elapsed, CPU: rusage.CPU() - start, Latency: rep.Latency}, nil
}

// measureOwnProcess runs the load process (LoadCommand, on LoadCPUs)
// against url, at rate requests per second when rate > 0; mark runs when
// it says the measured load starts.
func (r *runner) measureOwnProcess(ctx context.Context, url string, rate int, mark func() error) (loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, r.o.Warmup+r.o.Duration+loadGrace)
	defer cancel()
	args := append(pinnedTo(r.o.LoadCPUs, r.o.LoadCommand...),
		"-url", url, fmt.Sprintf("-users=%d", r.o.Users), fmt.Sprintf("-c=%d", r.o.Connections),
		"-warmup", r.o.Warmup.String(), "-duration", r.o.Duration.String(), fmt.Sprintf("-rate=%d", rate))
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), EnvKey+"="+r.key)
	errs := &tail{max: 4096}
	cmd.Stderr = errs
	cmd.SysProcAttr = dieWithParent()
	out, err := cmd.StdoutPipe()
	if err != nil {
		return loadResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return loadResult{}, err
	}
	var (
		res              loadResult
		marked, measured bool
		lineErr          error
	)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for lineErr == nil && sc.Scan() {
		line := sc.Text()
		switch {
		case line == lineMeasuring && !marked:
			marked = true
			lineErr = mark()
		case strings.HasPrefix(line, lineMeasured) && marked:
			res.Latency = load.NewHistogram()
			if err := json.Unmarshal([]byte(line[len(lineMeasured):]), &res); err != nil {
				lineErr = fmt.Errorf("the load process's report: %w", err)
			}
			measured = true
		}
	}
	if lineErr != nil {
		cancel()
	}
	_, _ = io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	switch {
	case lineErr != nil:
		return loadResult{}, lineErr
	case waitErr != nil:
		return loadResult{}, fmt.Errorf("the load process: %w: %s", waitErr, errs)
	case !measured:
		return loadResult{}, fmt.Errorf("the load process reported no measured load: %s", errs)
	}
	return res, nil
}

// Subscribers is the subscribers process (bench fanout's, run again as
// `streamgate bench subscribers`) with its arguments; the API key comes
// from EnvKey.
func Subscribers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o subscribers.Options
	if err := parseFlags("bench subscribers", args, stderr, o.Flags); err != nil {
		return err
	}
	return subscribers.Run(ctx, o, os.Getenv(EnvKey), stdout)
}
