package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
	"github.com/streamgate/streamgate/tools/streamgate/internal/subscribers"
)

// fanoutGrace bounds how long the subscribers may take beyond the
// publishing to get the last state (a backlog draining).
const fanoutGrace = 15 * time.Second

// FanoutOptions say what bench fanout measures: one row a rate, each
// with subscribers of their own.
type FanoutOptions struct {
	// Command starts the server: Command plus Serve's arguments (e.g. the
	// streamgate binary, "bench", "serve"). Required.
	Command []string
	// SubscribersCommand starts the subscribers: it plus Subscribers'
	// flags (e.g. the streamgate binary, "bench", "subscribers").
	// Required.
	SubscribersCommand []string
	// Subscribers is how many WebSockets watch, one topic each, spread
	// over Topics topics (default 1).
	Subscribers, Topics int
	// Rates are the states published a second on each topic, one row
	// each, for Duration.
	Rates    []float64
	Duration time.Duration
	// Conflate picks the resource the subscribers watch: the gateway's
	// default (true), or one declared conflate: false.
	Conflate bool
	// Dials bounds the WebSockets being opened at once; default 64.
	Dials int
	// ServerCPUs and LoadCPUs pin the server and the subscribers (taskset
	// -c); "" leaves one unpinned. SplitCPUs gives the usual split.
	ServerCPUs, LoadCPUs string
	// LogLevel is the gateway's, as ServeOptions.LogLevel.
	LogLevel slog.Level
	// ServerCPUProfile, when set, is where the server writes a CPU
	// profile of itself from the first row's publishing until it stops.
	ServerCPUProfile string
	// Floor, when set, runs each rate again against the floor
	// (KindFanoutFloor, on ServerCPUs): a bare broadcaster writing the
	// same frames, whose CPU per delivery is the least a server spends
	// on the machine; each row's Floor is that run.
	Floor bool
	// Progress, if set, receives a line per row, and notes.
	Progress io.Writer
}

// FanoutResult is what Fanout measured, a row a rate.
type FanoutResult struct {
	Options FanoutOptions
	Rows    []*FanoutRow
	// Resource is the topics' resource; ConflateKeyKnown whether the
	// gateway read its conflate key (see ConflateKeyKnown).
	Resource         string
	ConflateKeyKnown bool
	Date             time.Time
	NumCPU           int
}

// FanoutRow is one rate's run.
type FanoutRow struct {
	Rate float64
	// States is how many were published on each topic, Published on
	// all of them.
	States, Published int
	subscribers.Result
	// ServerCPU is the server process's CPU time from the first publish
	// until the subscribers were done.
	ServerCPU time.Duration
	// Floor is the same rate's run against the floor (Options.Floor);
	// nil without one.
	Floor *FanoutRow
}

// CPUOverFloor is the server's CPU per delivery as a multiple of the
// floor's; 0 without a floor run.
func (r *FanoutRow) CPUOverFloor() float64 {
	if r.Floor == nil {
		return 0
	}
	return ratio(float64(r.ServerCPUPer100k()), float64(r.Floor.ServerCPUPer100k()))
}

// Elapsed is from when the first state was due to the last delivery.
func (r *FanoutRow) Elapsed() time.Duration { return time.Duration(r.Last - r.First) }

// DeliveriesPerSecond over Elapsed.
func (r *FanoutRow) DeliveriesPerSecond() float64 {
	return ratio(float64(r.Deliveries), r.Elapsed().Seconds())
}

// ServerCPUPer100k is the server's CPU time per 100,000 deliveries.
func (r *FanoutRow) ServerCPUPer100k() time.Duration {
	if r.Deliveries == 0 {
		return 0
	}
	return time.Duration(float64(r.ServerCPU) * 100_000 / float64(r.Deliveries))
}

// Check refuses options Fanout cannot run, with what to change.
func (o *FanoutOptions) Check() error {
	if o.Topics == 0 {
		o.Topics = 1
	}
	if o.Dials <= 0 {
		o.Dials = 64
	}
	switch {
	case o.Subscribers <= 0:
		return errors.New("-subscribers must be at least 1")
	case o.Topics < 0 || o.Topics > o.Subscribers:
		return fmt.Errorf("-topics must be 1 to -subscribers (%d)", o.Subscribers)
	case o.Duration <= 0:
		return errors.New("-duration must be positive")
	case len(o.Rates) == 0:
		return errors.New("give a -rate")
	}
	for _, r := range o.Rates {
		if err := CheckRate(r, o.Duration); err != nil {
			return err
		}
	}
	return checkPinning(o.ServerCPUs, o.LoadCPUs)
}

// CheckRate refuses a rate that publishes no state in d, or more than a
// run may.
func CheckRate(rate float64, d time.Duration) error {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return fmt.Errorf("rate %v: want a positive number of states a second", rate)
	}
	if d > 0 {
		if n := statesIn(rate, d); n < 1 || n > subscribers.MaxStates {
			return fmt.Errorf("rate %v for %v publishes %d states a topic: want 1 to %d", rate, d, n, subscribers.MaxStates)
		}
	}
	return nil
}

// statesIn is how many states rate publishes in d.
func statesIn(rate float64, d time.Duration) int {
	return int(math.Min(math.Round(rate*d.Seconds()), subscribers.MaxStates+1))
}

// ParseRates reads a comma-separated list of rates ("50,100,250").
func ParseRates(s string) ([]float64, error) {
	var rates []float64
	for part := range strings.SplitSeq(s, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(part), 64)
		if err != nil {
			return nil, fmt.Errorf("rate %q: want a number of states a second, or a list: 50,100", part)
		}
		if err := CheckRate(r, 0); err != nil {
			return nil, err
		}
		rates = append(rates, r)
	}
	return rates, nil
}

// Fanout starts the server (the gateway and a publishing service, on
// ServerCPUs) and, for each rate, a subscribers process (on LoadCPUs)
// whose WebSockets all subscribe before the service publishes; it
// measures what they saw and the server's CPU time.
func Fanout(ctx context.Context, o FanoutOptions) (*FanoutResult, error) {
	if len(o.Command) == 0 || len(o.SubscribersCommand) == 0 {
		return nil, errors.New("bench fanout: no command to start the server and the subscribers with")
	}
	if err := o.Check(); err != nil {
		return nil, fmt.Errorf("bench fanout: %w", err)
	}
	res := &FanoutResult{Options: o, Resource: resourceConflated, ConflateKeyKnown: ConflateKeyKnown(), Date: time.Now().UTC(), NumCPU: runtime.NumCPU()}
	if !o.Conflate {
		res.Resource = resourceQueued
	}
	if !res.ConflateKeyKnown && o.Progress != nil {
		fmt.Fprintln(o.Progress, "note: this gateway has no conflate key: it conflates no topic, so -conflate=true and false are the same run")
	}
	key, serviceKey := randomKey(), randomKey()
	env := []string{EnvKey + "=" + key, EnvServiceKey + "=" + serviceKey}
	args := []string{KindFanout, "-log-level=" + o.LogLevel.String()}
	if o.ServerCPUProfile != "" {
		args = append(args, "-cpuprofile", o.ServerCPUProfile)
	}
	srv, err := startProcess(pinnedTo(o.ServerCPUs, o.Command...), env, "server", args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.stop() }()
	var floor *process
	if o.Floor {
		if floor, err = startProcess(pinnedTo(o.ServerCPUs, o.Command...), env, "floor", KindFanoutFloor); err != nil {
			return nil, err
		}
		defer func() { _ = floor.stop() }()
	}
	for i, rate := range o.Rates {
		row, err := fanoutRow(ctx, o, srv, key, res.Resource, fmt.Sprintf("r%d", i+1), rate)
		if err != nil {
			return nil, fmt.Errorf("rate %v: %w", rate, err)
		}
		res.Rows = append(res.Rows, row)
		o.progress("rate", row)
		if floor != nil {
			if row.Floor, err = fanoutRow(ctx, o, floor, key, res.Resource, fmt.Sprintf("f%d", i+1), rate); err != nil {
				return nil, fmt.Errorf("rate %v, the floor: %w", rate, err)
			}
			o.progress("floor", row.Floor)
		}
	}
	if floor != nil {
		if err := floor.stop(); err != nil {
			return nil, err
		}
	}
	if err := srv.stop(); err != nil {
		return nil, err
	}
	return res, nil
}

// progress writes a row's line to Progress, if set.
func (o FanoutOptions) progress(what string, row *FanoutRow) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "%-5s %-8v %8d deliveries  p99 %7s  lost %d  not there %d  latest %d/%d  server CPU %s/100k\n", what, row.Rate, row.Deliveries,
			fmtLatency(row.Latency.Percentile(99)), row.Lost, row.Missing, row.Latest, row.Connected, seconds(row.ServerCPUPer100k()))
	}
}

// fanoutRow runs one rate: the subscribers subscribe to topics named
// after prefix, then the server publishes on them.
func fanoutRow(ctx context.Context, o FanoutOptions, srv *process, key, resource, prefix string, rate float64) (*FanoutRow, error) {
	states := statesIn(rate, o.Duration)
	const subscribeTimeout = 2 * time.Minute
	wait := o.Duration + fanoutGrace
	ctx, cancel := context.WithTimeout(ctx, subscribeTimeout+wait+loadGrace)
	defer cancel()
	args := append(pinnedTo(o.LoadCPUs, o.SubscribersCommand...),
		"-url", "http://"+srv.addr, "-subscribers="+strconv.Itoa(o.Subscribers), "-topics="+strconv.Itoa(o.Topics),
		"-resource", resource, "-prefix", prefix, "-states="+strconv.Itoa(states), "-dials="+strconv.Itoa(o.Dials),
		"-subscribe-timeout", subscribeTimeout.String(), "-wait", wait.String())
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), EnvKey+"="+key)
	cmd.SysProcAttr = dieWithParent()
	errs := &tail{max: 4096}
	cmd.Stderr = errs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	row := &FanoutRow{Rate: rate, States: states, Published: states * o.Topics}
	var before time.Duration
	saw := false
	// Each line moves the row on: subscribed starts the publishing,
	// saw ends it.
	step := func(line string) error {
		switch {
		case line == subscribers.LineSubscribed:
			var err error
			if before, err = srv.cpuTime(); err != nil {
				return err
			}
			cmdLine := fanoutCommand{resource: resource, prefix: prefix, rate: rate, count: states, topics: o.Topics}
			_, err = io.WriteString(srv.in, cmdLine.String())
			return err
		case strings.HasPrefix(line, subscribers.LineSaw):
			after, err := srv.cpuTime()
			if err != nil {
				return err
			}
			row.ServerCPU = after - before
			row.Latency = load.NewHistogram()
			if err := json.Unmarshal([]byte(line[len(subscribers.LineSaw):]), &row.Result); err != nil {
				return fmt.Errorf("the subscribers' report: %w", err)
			}
			saw = true
		}
		return nil
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	var stepErr error
	for stepErr == nil && sc.Scan() {
		stepErr = step(sc.Text())
	}
	if stepErr != nil {
		cancel()
	}
	_, _ = io.Copy(io.Discard, out)
	waitErr := cmd.Wait()
	switch {
	case stepErr != nil:
		return nil, stepErr
	case waitErr != nil:
		return nil, fmt.Errorf("the subscribers: %w: %s", waitErr, errs)
	case !saw:
		return nil, fmt.Errorf("the subscribers reported nothing: %s", errs)
	}
	return row, nil
}

// seconds writes d in seconds, to the millisecond.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + " s"
}
