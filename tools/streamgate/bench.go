package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/bench"
)

// benchCmd runs `bench compare` and, hidden, `bench serve KIND` (the
// servers compare starts by running this binary again).
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("bench: want compare")
	}
	switch args[0] {
	case "compare":
		return benchCompareCmd(ctx, args[1:], stdout, stderr)
	case "serve":
		if err := bench.Serve(ctx, args[1:], stdout, stderr); err != nil {
			return &runError{err}
		}
		return nil
	}
	return errors.New("bench: want compare")
}

func benchCompareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench compare", flag.ContinueOnError)
	systems := fs.String("systems", strings.Join(bench.Systems(), ","), "systems to compare, the first the baseline of the ratios (also "+strings.Join(bench.NodeSystems(), ", ")+": one Node handler behind either hop, needs node, from the repository's root)")
	rounds := fs.Int("rounds", 2, "rounds; each runs every system once, in turn")
	conns := fs.Int("c", 64, "connections of the load (closed loop)")
	duration := fs.Duration("duration", 8*time.Second, "measured load per system per round")
	warmup := fs.Duration("warmup", time.Second, "unmeasured load before each measured one")
	users := fs.Int("users", 1000, "users served; the load reads them in turn")
	markdown := fs.String("markdown", "", "also write the table as markdown to FILE")
	svg := fs.String("svg", "", "write the latency-by-percentile chart as SVG to FILE")
	serverCPUs := fs.String("server-cpus", "", "pin the servers to these CPUs with taskset -c (e.g. 1, with the comparison itself under taskset -c 0)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("bench compare: unexpected arguments")
	}
	exe, err := os.Executable()
	if err != nil {
		return &runError{err}
	}
	res, err := bench.Compare(ctx, bench.Options{
		Command: []string{exe, "bench", "serve"}, Systems: strings.Split(*systems, ","),
		Rounds: *rounds, Connections: *conns, Duration: *duration, Warmup: *warmup, Users: *users,
		Progress: stderr, ServerCPUs: *serverCPUs,
	})
	if err != nil {
		return &runError{err}
	}
	if err := res.WriteText(stdout); err != nil {
		return &runError{err}
	}
	if *markdown != "" {
		if err := writeFile(*markdown, res.WriteMarkdown); err != nil {
			return &runError{err}
		}
	}
	if *svg != "" {
		if err := writeFile(*svg, res.WriteSVG); err != nil {
			return &runError{err}
		}
	}
	return nil
}
