package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/asyncwriter"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// KindFanout is bench fanout's server: a socket service that publishes
// state on topics at a fixed rate and the streamgate gateway in front of
// it, in one process. Its ready line gives the gateway's HTTP address;
// each line "publish RESOURCE PREFIX RATE COUNT TOPICS" on its input
// starts publishing (see fanoutCommand).
const KindFanout = "fanout"

// The fan-out server's two resources: the same topics, one left to the
// gateway's default (conflated under overload, once the gateway does),
// the other declared conflate: false.
const (
	resourceConflated = "items"
	resourceQueued    = "ledger"
)

// conflateKey is the resource key the gateway reads as "never conflate
// this resource's topics"; gateways from before it refuse it as unknown.
const conflateKey = "conflate"

// fanoutConfig routes GET /v1/items/{id} and GET /v1/ledger/{id} (what a
// WebSocket subscribe checks) to the fan-out service at addr, for the
// admin API key in EnvKey; ledger says conflate: false when withKey.
func fanoutConfig(addr string, withKey bool) string {
	ledger := "{service: fanout, crud: [get], cache: false, coalesce: false}"
	if withKey {
		ledger = "{service: fanout, crud: [get], cache: false, coalesce: false, " + conflateKey + ": false}"
	}
	return fmt.Sprintf(`auth:
  api_keys:
    - {name: bench, secret_env: %s, roles: [admin]}
services:
  fanout: {target: %q, key_env: %s}
versions:
  v1:
    resources:
      %s: {service: fanout, crud: [get], cache: false, coalesce: false}
      %s: %s
`, EnvKey, addr, EnvServiceKey, resourceConflated, resourceQueued, ledger)
}

// ConflateKeyKnown reports whether this build's gateway reads a
// resource's conflate key. Without it the gateway never conflates, and
// both of the fan-out server's resources are queued alike.
func ConflateKeyKnown() bool {
	_, err := config.Parse("fanout.yaml", []byte(fanoutConfig("127.0.0.1:1", true)), func(string) string { return "x" })
	return err == nil || !strings.Contains(err.Error(), fmt.Sprintf("unknown key %q", conflateKey))
}

// serveFanout runs the fan-out service on a loopback socket and the
// gateway in front of it on o.Listen, then publishes as the lines of
// input say until ctx ends.
func serveFanout(ctx context.Context, o ServeOptions, input io.Reader, stdout, stderr io.Writer) error {
	serviceKey := os.Getenv(EnvServiceKey)
	if serviceKey == "" {
		return errors.New("fanout: " + EnvServiceKey + " is unset")
	}
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true, Roles: []string{"admin"}})
	if err != nil {
		return err
	}
	srv, err := socket.NewServer(socket.Config{Name: "fanout", Version: "bench"}, socket.WithKeys(keys), socket.WithoutCoalescing())
	if err != nil {
		return err
	}
	get := socket.HandlerFunc(func(_ context.Context, r *socket.Request) (json.RawMessage, error) {
		return json.Marshal(map[string]string{"id": r.ResourceID})
	})
	for _, action := range []string{"GET_ITEM", "GET_LEDGER"} {
		if err := srv.Handle(action, get, socket.Read()); err != nil {
			return err
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	published := make(chan error, 1)
	publish := func(topic string, _ int, data []byte) error {
		// The queued event keeps data: each gets bytes of its own.
		return srv.Publish(topic, append([]byte(nil), data...), socket.Visibility{Public: true})
	}
	go func() { published <- publishAsTold(ctx, publish, input, o.CPUProfile) }()

	logs := asyncwriter.New(stderr, asyncwriter.DefaultLimit)
	defer func() { _ = logs.Close() }()
	err = gateway.Run(ctx, gateway.RunOptions{
		ConfigData: []byte(fanoutConfig(lis.Addr().String(), ConflateKeyKnown())), ConfigPath: "fanout.yaml",
		HTTPAddr: o.Listen, GRPCAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: o.LogLevel})),
		Ready:  func(a gateway.Addrs) { fmt.Fprintf(stdout, "ready %s\n", a.HTTP) },
	})
	cancel()
	if serveErr := <-served; err == nil {
		err = serveErr
	}
	if pubErr := <-published; err == nil && !errors.Is(pubErr, context.Canceled) {
		err = pubErr
	}
	return err
}

// fanoutCommand is one publish line of the fan-out server's input: COUNT
// states on each of TOPICS topics RESOURCE/PREFIX-1 … RESOURCE/PREFIX-K,
// RATE a second on each, the first right away.
type fanoutCommand struct {
	resource, prefix string
	rate             float64
	count, topics    int
}

// String is the command as a line of input.
func (c fanoutCommand) String() string {
	return fmt.Sprintf("publish %s %s %s %d %d\n", c.resource, c.prefix, strconv.FormatFloat(c.rate, 'g', -1, 64), c.count, c.topics)
}

// topic is the command's k-th topic (from 0).
func (c fanoutCommand) topic(k int) string {
	return c.resource + "/" + c.prefix + "-" + strconv.Itoa(k+1)
}

// parseFanoutCommand reads a publish line.
func parseFanoutCommand(line string) (fanoutCommand, error) {
	f := strings.Fields(line)
	if len(f) != 6 || f[0] != "publish" {
		return fanoutCommand{}, fmt.Errorf("fanout: want \"publish RESOURCE PREFIX RATE COUNT TOPICS\", got %q", line)
	}
	c := fanoutCommand{resource: f[1], prefix: f[2]}
	var err1, err2, err3 error
	c.rate, err1 = strconv.ParseFloat(f[3], 64)
	c.count, err2 = strconv.Atoi(f[4])
	c.topics, err3 = strconv.Atoi(f[5])
	if err1 != nil || err2 != nil || err3 != nil || c.rate <= 0 || c.count <= 0 || c.topics <= 0 {
		return fanoutCommand{}, fmt.Errorf("fanout: bad publish line %q", line)
	}
	return c, nil
}

// publishFunc publishes state n of topic, whose JSON is data (reused
// after it returns).
type publishFunc func(topic string, n int, data []byte) error

// publishAsTold publishes what each line of input says, one command at a
// time, until input ends or ctx does; with profile, it profiles the
// process's CPU from the first command on.
func publishAsTold(ctx context.Context, publish publishFunc, input io.Reader, profile string) error {
	lines := make(chan string)
	go func() { // ends when input does (the parent closes it)
		defer close(lines)
		sc := bufio.NewScanner(input)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case line, ok := <-lines:
			if !ok {
				<-ctx.Done()
				return ctx.Err()
			}
			c, err := parseFanoutCommand(line)
			if err != nil {
				return err
			}
			if profile != "" {
				stop, err := startCPUProfile(profile)
				if err != nil {
					return err
				}
				defer stop()
				profile = ""
			}
			if err := publishStates(ctx, publish, c); err != nil {
				return err
			}
		}
	}
}

// publishStates publishes c's states: state n of every topic is due at
// start + (n-1)/rate, and carries n and that time (unix ns), from which
// the subscribers count their latency. A publisher that falls behind
// publishes late, never skips.
func publishStates(ctx context.Context, publish publishFunc, c fanoutCommand) error {
	interval := time.Duration(float64(time.Second) / c.rate)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	data := make([]byte, 0, 64)
	for n := 1; n <= c.count; n++ {
		due := start.Add(time.Duration(n-1) * interval)
		if wait := time.Until(due); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-timer.C:
			}
		}
		data = append(data[:0], `{"n":`...)
		data = strconv.AppendInt(data, int64(n), 10)
		data = append(data, `,"t":`...)
		data = strconv.AppendInt(data, due.UnixNano(), 10)
		data = append(data, '}')
		for k := range c.topics {
			if err := publish(c.topic(k), n, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// startCPUProfile profiles the process's CPU into path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}
