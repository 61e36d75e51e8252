// Package conformance is the conformance kit of the streamgate socket
// protocol (docs/protocol.md): it runs its cases against a fixture
// service (§12) of any runtime and reports each against the section of
// the spec it checks. It speaks the protocol itself, frame by frame, over
// gRPC, so that it checks the service and not a client library.
//
//	rep := conformance.Run(ctx, conformance.Options{Addr: "127.0.0.1:9000", Key: key})
//	rep.Print(os.Stdout) // PASS  §4    many-in-flight …
//	if rep.Failed > 0 { … }
package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"time"

	"google.golang.org/grpc"
)

// ProtocolVersion is the version of docs/protocol.md the kit checks.
const ProtocolVersion = "1.0"

// DefaultTimeout bounds one case.
const DefaultTimeout = 10 * time.Second

// Options say which service to check and how.
type Options struct {
	// Addr is the fixture service's address, HOST:PORT.
	Addr string
	// Key is the fixture's key K (§12).
	Key string
	// Run, when set, runs only the cases whose names it matches.
	Run *regexp.Regexp
	// Timeout bounds each case; default DefaultTimeout.
	Timeout time.Duration
	// DialOptions are added to every connection (e.g. TLS credentials).
	DialOptions []grpc.DialOption
}

// Result is one case's outcome.
type Result struct {
	// Section is the spec section the case checks, e.g. "4".
	Section string `json:"section"`
	// Name is the case's name.
	Name string `json:"name"`
	// Pass says whether the service behaved as the section says.
	Pass bool `json:"pass"`
	// Why says what went wrong, on failure.
	Why string `json:"why,omitempty"`
	// Millis is how long the case took.
	Millis int64 `json:"ms"`
}

// Report is a whole run.
type Report struct {
	// Protocol is the protocol version checked.
	Protocol string `json:"protocol"`
	// Addr is the service checked.
	Addr string `json:"addr"`
	// Cases are the cases run, in order.
	Cases []Result `json:"cases"`
	// Passed and Failed count them.
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	// Millis is how long the run took.
	Millis int64 `json:"ms"`
}

// Run runs the cases (those Options.Run selects) one after the other and
// returns the report. The drain case, which ends the service, runs last.
func Run(ctx context.Context, o Options) Report {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	start := time.Now()
	rep := Report{Protocol: ProtocolVersion, Addr: o.Addr, Cases: []Result{}}
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "k" + hex.EncodeToString(b[:])
	for _, c := range Cases() {
		if o.Run != nil && !o.Run.MatchString(c.Name) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		r := runCase(ctx, &o, prefix, c)
		rep.Cases = append(rep.Cases, r)
		if r.Pass {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	rep.Millis = time.Since(start).Milliseconds()
	return rep
}

// runCase runs one case under its own deadline and closes what it
// opened.
func runCase(ctx context.Context, o *Options, prefix string, c Case) (r Result) {
	r = Result{Section: c.Section, Name: c.Name}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, o.Timeout)
	e := &env{ctx: cctx, cfg: o, prefix: prefix}
	defer func() {
		if p := recover(); p != nil {
			r.Pass, r.Why = false, fmt.Sprintf("the kit panicked: %v", p)
		}
		cancel()
		e.close()
		r.Millis = time.Since(start).Milliseconds()
	}()
	if err := c.Run(e); err != nil {
		r.Why = err.Error()
		if cctx.Err() != nil {
			r.Why += fmt.Sprintf(" (the case's %s ran out)", o.Timeout)
		}
		return r
	}
	r.Pass = true
	return r
}

// Print writes one line per case and the summary.
func (r Report) Print(w io.Writer) {
	for _, c := range r.Cases {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		line := fmt.Sprintf("%s  %-6s %s", verdict, "§"+c.Section, c.Name)
		if !c.Pass {
			line += "  (" + c.Why + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintln(w, r.Summary())
}

// Summary is the report's last line.
func (r Report) Summary() string {
	verdict := "ok"
	if r.Failed > 0 || r.Passed == 0 {
		verdict = "FAIL"
	}
	return fmt.Sprintf("%s: streamgate socket protocol %s at %s: %d passed, %d failed (%.1fs)",
		verdict, r.Protocol, r.Addr, r.Passed, r.Failed, float64(r.Millis)/1000)
}

// JSON writes the report as indented JSON.
func (r Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
