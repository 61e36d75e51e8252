package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/bench"
	"github.com/streamgate/streamgate/tools/streamgate/internal/subscribers"
)

// benchFanoutCmd declares the flags of bench fanout.
func benchFanoutCmd(fs *flag.FlagSet) runner {
	o := bench.FanoutOptions{Topics: 1, Duration: 10 * time.Second, Conflate: true}
	fs.IntVar(&o.Subscribers, "subscribers", 1000, "WebSocket subscribers, in a process of their own")
	fs.IntVar(&o.Topics, "topics", 1, "topics the subscribers spread over (subscriber i watches topic i mod K)")
	rates := func(s string) error {
		r, err := bench.ParseRates(s)
		o.Rates = r
		return err
	}
	fs.Func("rate", "states published a second on each topic; a list (10,50,100) runs a row each", rates)
	fs.Func("rates", "the same as -rate", rates)
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long each row publishes")
	fs.BoolVar(&o.Conflate, "conflate", true, "watch the resource the gateway may conflate (its default); false: one declared conflate: false")
	fs.IntVar(&o.Dials, "dials", 64, "WebSockets being opened and subscribed at once")
	fs.BoolVar(&o.Floor, "floor", false, "run each rate again against a bare broadcaster writing the same frames on the same CPUs (the least a server spends a delivery here), and report the gateway's CPU per delivery as a multiple of it")
	markdown := fs.String("markdown", "", "also write the table as markdown to FILE")
	profile := fs.String("server-cpuprofile", "", "write a CPU profile of the server (go tool pprof) from the first row's publishing until it stops to FILE")
	fs.TextVar(&o.LogLevel, "log-level", slog.LevelInfo, "the gateway's log level (debug, info, warn, error), written as the gateway command writes them; info logs one line per request (each subscribe)")
	o.LoadCPUs, o.ServerCPUs = bench.SplitCPUs()
	fs.Func("load-cpus", "pin the subscribers' process to these CPUs (taskset -c; all: not pinned) (default "+cpusDefault(o.LoadCPUs)+")", cpusFlag(&o.LoadCPUs))
	fs.Func("server-cpus", "pin the server (gateway and publishing service) to these CPUs (taskset -c; all: not pinned) (default "+cpusDefault(o.ServerCPUs)+")", cpusFlag(&o.ServerCPUs))
	return func(ctx context.Context, in *invocation) error {
		if err := o.Check(); err != nil {
			return &usageError{err}
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Command = []string{exe, "bench", "serve"}
		o.SubscribersCommand = []string{exe, "bench", "subscribers"}
		o.Progress = in.stderr
		if *profile != "" {
			if o.ServerCPUProfile, err = filepath.Abs(*profile); err != nil {
				return err
			}
		}
		res, err := bench.Fanout(ctx, o)
		if err != nil {
			return err
		}
		if err := res.WriteText(in.stdout); err != nil {
			return err
		}
		if *markdown != "" {
			return writeFile(*markdown, res.WriteMarkdown)
		}
		return nil
	}
}

// benchSubscribersCmd declares the flags of bench subscribers, the
// process bench fanout starts by running this binary again.
func benchSubscribersCmd(fs *flag.FlagSet) runner {
	var o subscribers.Options
	o.Flags(fs)
	return func(ctx context.Context, in *invocation) error {
		return subscribers.Run(ctx, o, os.Getenv(bench.EnvKey), in.stdout)
	}
}
