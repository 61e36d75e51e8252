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

// loadCmd drives one route and prints what it measured.
func loadCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	method := fs.String("method", "GET", "HTTP method")
	ids := fs.String("ids", "1-1", "ids that replace {id} in the URL and body, taken in turn: FROM-TO")
	headers := &headerFlags{h: http.Header{}}
	fs.Var(headers, "H", "a header 'Name: value' sent with every request (repeatable)")
	body := fs.String("body", "", "request body ({id} is replaced)")
	bodyFile := fs.String("body-file", "", "read the request body from FILE")
	conns := fs.Int("c", 64, "connections (closed loop: requests in flight)")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	rate := fs.String("rate", "0", "fixed rate R/s (open loop, latency from when each request was due); 0: closed loop")
	maxRequests := fs.Int64("requests", 0, "stop after this many requests (0: when -duration ends)")
	timeout := fs.Duration("timeout", 30*time.Second, "per-request timeout")
	jsonOut := fs.String("json", "", "write the report and latency histogram as JSON to FILE")
	svgOut := fs.String("svg", "", "write a latency-by-percentile chart as SVG to FILE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("load: want one URL, e.g. http://127.0.0.1:8080/v1/users/{id}")
	}
	idRange, err := load.ParseRange(*ids)
	if err != nil {
		return fmt.Errorf("load: -%w", err)
	}
	n, per, err := load.ParseRate(*rate)
	if err != nil {
		return fmt.Errorf("load: -%w", err)
	}
	reqBody := []byte(*body)
	if *bodyFile != "" {
		if *body != "" {
			return errors.New("load: -body and -body-file are exclusive")
		}
		if reqBody, err = os.ReadFile(*bodyFile); err != nil {
			return &runError{err}
		}
	}
	o := load.Options{
		Method: strings.ToUpper(*method), URL: fs.Arg(0), IDs: idRange, Header: headers.h, Body: reqBody,
		Connections: *conns, Duration: *duration, Rate: n, RatePer: per, MaxRequests: *maxRequests, Timeout: *timeout,
	}
	if isTerminal(stdout) {
		o.Progress = func(p load.Progress) {
			fmt.Fprintf(stdout, "\r%6.1fs  %9d requests  %9.1f req/s  %d errors ", p.Elapsed.Seconds(), p.Requests, p.Rate, p.Errors)
		}
	}
	rep, err := load.Run(ctx, o)
	if err != nil {
		return err
	}
	if o.Progress != nil {
		fmt.Fprint(stdout, "\r\033[K")
	}
	if err := rep.WriteText(stdout); err != nil {
		return &runError{err}
	}
	if *jsonOut != "" {
		if err := writeFile(*jsonOut, rep.WriteJSON); err != nil {
			return &runError{err}
		}
	}
	if *svgOut != "" {
		title := fmt.Sprintf("%s %s (%d connections, %s)", rep.Method, rep.URL, rep.Connections, rep.Mode())
		if err := writeFile(*svgOut, func(w io.Writer) error {
			return load.WriteSVG(w, title, []load.Series{{Name: fmt.Sprintf("%.0f req/s", rep.RequestsPerSecond()), Latency: rep.Latency}})
		}); err != nil {
			return &runError{err}
		}
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
