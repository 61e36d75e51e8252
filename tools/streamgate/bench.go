package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/bench"
)

// benchCompareCmd declares the flags of bench compare.
func benchCompareCmd(fs *flag.FlagSet) runner {
	systems := bench.Systems()
	known := bench.KnownSystems()
	fs.Func("systems", "systems to compare, the first the baseline of the ratios (default "+strings.Join(systems, ",")+"; also "+strings.Join(bench.NodeSystems(), ", ")+": one Node handler behind either hop, needs node, from the repository's root; and "+strings.Join(bench.WarnSystems(), ", ")+": the streamgate pairs with the gateway at -log-level warn, whose peers' cost of the access log the table then states)", func(s string) error {
		list := strings.Split(s, ",")
		for _, name := range list {
			if !slices.Contains(known, name) {
				return fmt.Errorf("unknown system %q; known: %s", name, strings.Join(known, ", "))
			}
		}
		systems = list
		return nil
	})
	rounds := fs.Int("rounds", 2, "rounds; each runs every system once, in turn")
	conns := fs.Int("c", 64, "connections of the load (closed loop)")
	duration := fs.Duration("duration", 8*time.Second, "measured load per system per round")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before each measured one")
	users := fs.Int("users", 1000, "users served; the load reads them in turn")
	markdown := fs.String("markdown", "", "also write the table as markdown to FILE")
	svg := fs.String("svg", "", "write the latency-by-percentile chart as SVG to FILE")
	var logLevel slog.Level
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "the streamgate gateways' log level (debug, info, warn, error), written as the gateway command writes them (text, asynchronously, to stderr); info logs one line per request")
	loadCPUs, serverCPUs := bench.SplitCPUs()
	fs.Func("load-cpus", "pin the load generator to these CPUs (taskset -c; all: not pinned) (default "+cpusDefault(loadCPUs)+")", cpusFlag(&loadCPUs))
	fs.Func("server-cpus", "pin the servers to these CPUs (taskset -c; all: not pinned) (default "+cpusDefault(serverCPUs)+")", cpusFlag(&serverCPUs))
	wrk := "auto"
	fs.Func("wrk", `load with this wrk instead of the load process (auto: wrk when on PATH; off: never) (default "auto")`, func(s string) error {
		if s != "auto" && s != "off" {
			if _, err := exec.LookPath(s); err != nil {
				return err
			}
		}
		wrk = s
		return nil
	})
	fixedRate, fixedSet := 0, false
	fs.Func("fixed-rate", "after the rounds, run each system once more at a fixed rate (open loop, the load process) and report its p50 and p99 there: half (of direct's rate over the rounds), off, or N req/s (default half when direct is among -systems, else off)", func(s string) error {
		n, err := parseFixedRate(s)
		fixedRate, fixedSet = n, true
		return err
	})
	return func(ctx context.Context, in *invocation) error {
		if !fixedSet && slices.Contains(systems, bench.SystemDirect) {
			fixedRate = bench.FixedRateHalf
		}
		if fixedRate == bench.FixedRateHalf && !slices.Contains(systems, bench.SystemDirect) {
			return usagef("-fixed-rate half needs %s among -systems", bench.SystemDirect)
		}
		o := bench.Options{
			Systems: systems, Rounds: *rounds, Connections: *conns, Duration: *duration, Warmup: *warmup, Users: *users,
			Progress: in.stderr, ServerCPUs: serverCPUs, LoadCPUs: loadCPUs, GatewayLogLevel: logLevel,
			FixedRate: fixedRate,
		}
		switch wrk {
		case "off":
		case "auto":
			o.WRK, _ = exec.LookPath("wrk")
		default:
			o.WRK, _ = exec.LookPath(wrk)
		}
		return runBenchCompare(ctx, in, o, *markdown, *svg)
	}
}

// parseFixedRate reads a -fixed-rate value: half (bench.FixedRateHalf),
// off (0) or a positive number of requests per second.
func parseFixedRate(s string) (int, error) {
	switch s {
	case "half":
		return bench.FixedRateHalf, nil
	case "off":
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("want half, off or a positive number of requests per second, not %q", s)
	}
	return n, nil
}

// cpusFlag sets *list from a -load-cpus or -server-cpus value: a CPU
// list for taskset -c, or "all" for no pinning.
func cpusFlag(list *string) func(string) error {
	return func(s string) error {
		if s == "all" {
			s = ""
		}
		if err := bench.CheckCPUList(s); err != nil {
			return err
		}
		*list = s
		return nil
	}
}

// cpusDefault shows a default CPU list, "all" when there is none.
func cpusDefault(list string) string {
	if list == "" {
		return "all"
	}
	return list
}

// benchLoadCmd declares the flags of bench load, the load process bench
// compare starts by running this binary again.
func benchLoadCmd(fs *flag.FlagSet) runner {
	var o bench.LoadOptions
	o.Flags(fs)
	return func(ctx context.Context, in *invocation) error {
		return bench.RunLoad(ctx, o, in.stdout)
	}
}

// benchServeCmd declares the flags of bench serve KIND, the servers
// bench compare starts by running this binary again.
func benchServeCmd(fs *flag.FlagSet) runner {
	var o bench.ServeOptions
	o.Flags(fs)
	return func(ctx context.Context, in *invocation) error {
		if in.lead == "" {
			return usagef("name the server first")
		}
		o.Kind = in.lead
		return bench.RunServer(ctx, o, in.stdout, in.stderr)
	}
}

// runBenchCompare runs the comparison o and writes its table (and the
// files asked for).
func runBenchCompare(ctx context.Context, in *invocation, o bench.Options, markdown, svg string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	o.Command = []string{exe, "bench", "serve"}
	o.LoadCommand = []string{exe, "bench", "load"}
	if o.WRK != "" {
		fmt.Fprintf(in.stderr, "loading with %s\n", o.WRK)
	}
	res, err := bench.Compare(ctx, o)
	if err != nil {
		return err
	}
	if err := res.WriteText(in.stdout); err != nil {
		return err
	}
	if markdown != "" {
		if err := writeFile(markdown, res.WriteMarkdown); err != nil {
			return err
		}
	}
	if svg != "" {
		if err := writeFile(svg, res.WriteSVG); err != nil {
			return err
		}
	}
	return nil
}
