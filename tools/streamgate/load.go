package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// headerFlags collect repeated -H 'Name: value' flags.
type headerFlags struct{ h http.Header }

func (f *headerFlags) String() string { return "" }

func (f *headerFlags) Set(s string) error { return load.ParseHeader(f.h, s) }

// loadCmd declares the load command's flags; it drives one route, prints
// what it measured, and fails when no request succeeded.
func loadCmd(fs *flag.FlagSet) runner {
	o := load.Options{IDs: load.Range{From: 1, To: 1}, Header: http.Header{}, RatePer: time.Second}
	method := fs.String("method", "GET", "HTTP method")
	fs.Func("ids", `ids that replace {id} in the URL and body, taken in turn: FROM-TO (default "1-1")`, func(s string) (err error) {
		o.IDs, err = load.ParseRange(s)
		return err
	})
	fs.Var(&headerFlags{h: o.Header}, "H", "a header 'Name: value' sent with every request (repeatable)")
	body := fs.String("body", "", "request body ({id} is replaced)")
	bodyFile := fs.String("body-file", "", "read the request body from FILE")
	fs.IntVar(&o.Connections, "c", 64, "connections (closed loop: requests in flight)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
	fs.Func("rate", `fixed rate R/s (open loop, latency from when each request was due); 0: closed loop (default "0")`, func(s string) (err error) {
		o.Rate, o.RatePer, err = load.ParseRate(s)
		return err
	})
	fs.Int64Var(&o.MaxRequests, "requests", 0, "stop after this many requests (0: when -duration ends)")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "per-request timeout")
	jsonOut := fs.String("json", "", "write the report and latency histogram as JSON to FILE")
	svgOut := fs.String("svg", "", "write a latency-by-percentile chart as SVG to FILE")
	return func(ctx context.Context, in *invocation) error {
		o.Method, o.URL, o.Body = strings.ToUpper(*method), in.args[0], []byte(*body)
		if *bodyFile != "" {
			if *body != "" {
				return usagef("-body and -body-file are exclusive")
			}
			var err error
			if o.Body, err = os.ReadFile(*bodyFile); err != nil {
				return err
			}
		}
		return runLoad(ctx, in.stdout, o, *jsonOut, *svgOut)
	}
}

// runLoad runs o, prints the report and writes the files asked for.
func runLoad(ctx context.Context, stdout io.Writer, o load.Options, jsonOut, svgOut string) error {
	if isTerminal(stdout) {
		o.Progress = func(p load.Progress) {
			fmt.Fprintf(stdout, "\r%6.1fs  %9d requests  %9.1f req/s  %d errors ", p.Elapsed.Seconds(), p.Requests, p.Rate, p.Errors)
		}
	}
	rep, err := load.Run(ctx, o)
	if err != nil {
		// Run refuses options (a URL off loopback) before it sends.
		return &usageError{err}
	}
	if o.Progress != nil {
		fmt.Fprint(stdout, "\r\033[K")
	}
	if err := rep.WriteText(stdout); err != nil {
		return err
	}
	if jsonOut != "" {
		if err := writeFile(jsonOut, rep.WriteJSON); err != nil {
			return err
		}
	}
	if svgOut != "" {
		title := fmt.Sprintf("%s %s (%d connections, %s)", rep.Method, rep.URL, rep.Connections, rep.Mode())
		if err := writeFile(svgOut, func(w io.Writer) error {
			return load.WriteSVG(w, title, []load.Series{{Name: fmt.Sprintf("%.0f req/s", rep.RequestsPerSecond()), Latency: rep.Latency}})
		}); err != nil {
			return err
		}
	}
	if rep.Requests == 0 {
		return errors.New("no request was sent")
	}
	if rep.Errors() == rep.Requests {
		// A load where nothing was answered measured nothing: a script
		// must not take its figures for a result.
		return fmt.Errorf("every request failed (%d of %d)", rep.Errors(), rep.Requests)
	}
	return nil
}

// isTerminal tells whether w is a terminal (a live progress line fits).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
