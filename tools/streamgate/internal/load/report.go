package load

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is what a run measured.
type Report struct {
	Method      string
	URL         string
	IDs         Range
	Connections int
	// Rate and RatePer are the fixed rate; Rate 0 means closed loop.
	Rate    int
	RatePer time.Duration
	// Elapsed is from the first request sent to the last answer.
	Elapsed time.Duration
	// Requests counts every request that got an answer or an error.
	Requests int64
	// Statuses counts answers by HTTP status.
	Statuses map[int]int64
	// TransportErrors counts requests that got no answer, by kind
	// ("connection refused", "timeout", …).
	TransportErrors map[string]int64
	// FirstTransportError is the first such error's message.
	FirstTransportError string
	// Latency holds every request's latency.
	Latency *Histogram
}

func newReport(o Options) *Report {
	return &Report{
		Method: o.Method, URL: o.URL, IDs: o.IDs, Connections: o.Connections, Rate: o.Rate, RatePer: o.RatePer,
		Statuses: map[int]int64{}, TransportErrors: map[string]int64{}, Latency: NewHistogram(),
	}
}

// add counts one result: an HTTP status, or status 0 and a transport error.
func (r *Report) add(status int, err string, latency time.Duration) {
	r.Requests++
	r.Latency.Record(latency)
	if status == 0 {
		kind := errorKind(err)
		r.TransportErrors[kind]++
		if r.FirstTransportError == "" {
			r.FirstTransportError = err
		}
		return
	}
	r.Statuses[status]++
}

// IsError tells whether an HTTP status counts as an error (not 1xx–3xx).
func IsError(status int) bool { return status < 100 || status >= 400 }

// Errors counts error statuses and transport errors.
func (r *Report) Errors() int64 {
	var n int64
	for status, c := range r.Statuses {
		if IsError(status) {
			n += c
		}
	}
	for _, c := range r.TransportErrors {
		n += c
	}
	return n
}

// RequestsPerSecond is Requests over Elapsed.
func (r *Report) RequestsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Mode describes the loop: "closed loop" or "fixed rate R/s".
func (r *Report) Mode() string {
	if r.Rate == 0 {
		return "closed loop"
	}
	if r.RatePer == time.Second {
		return fmt.Sprintf("fixed rate %d/s", r.Rate)
	}
	return fmt.Sprintf("fixed rate %d/%s", r.Rate, r.RatePer)
}

// errorKind sorts a transport error's message into a few kinds.
func errorKind(msg string) string {
	for _, k := range []struct{ match, kind string }{
		{"connection refused", "connection refused"},
		{"connection reset", "connection reset"},
		{"broken pipe", "broken pipe"},
		{"Client.Timeout", "timeout"},
		{"deadline exceeded", "timeout"},
		{"i/o timeout", "timeout"},
		{"too many open files", "too many open files"},
		{"cannot assign requested address", "no free local port"},
		{"EOF", "connection closed (EOF)"},
	} {
		if strings.Contains(msg, k.match) {
			return k.kind
		}
	}
	return "other"
}

// Percentiles are the ones a report prints.
var Percentiles = []float64{50, 90, 99, 99.9}

// WriteText prints the report for a person.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s  ids %s, %d connections, %s\n", r.Method, r.URL, r.IDs, r.Connections, r.Mode())
	fmt.Fprintf(&b, "requests   %d in %.2fs = %.1f req/s\n", r.Requests, r.Elapsed.Seconds(), r.RequestsPerSecond())
	b.WriteString("latency   ")
	for _, p := range Percentiles {
		fmt.Fprintf(&b, " p%s %s ", strconv.FormatFloat(p, 'f', -1, 64), FormatLatency(r.Latency.Percentile(p)))
	}
	fmt.Fprintf(&b, " max %s\n", FormatLatency(r.Latency.Max()))
	b.WriteString("status    ")
	for _, s := range slices.Sorted(maps.Keys(r.Statuses)) {
		fmt.Fprintf(&b, " %d: %d", s, r.Statuses[s])
		if IsError(s) {
			b.WriteString(" (error)")
		}
	}
	b.WriteString("\n")
	if len(r.TransportErrors) > 0 {
		b.WriteString("transport ")
		for _, k := range slices.Sorted(maps.Keys(r.TransportErrors)) {
			fmt.Fprintf(&b, " %s: %d", k, r.TransportErrors[k])
		}
		fmt.Fprintf(&b, "\n           first: %s\n", r.FirstTransportError)
	}
	fmt.Fprintf(&b, "errors     %d\n", r.Errors())
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatLatency prints a latency with three significant digits in ms
// (µs below 1 ms).
func FormatLatency(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'g', 3, 64) + "ms"
}

// reportJSON is the JSON form of a report (-json FILE).
type reportJSON struct {
	Method            string             `json:"method"`
	URL               string             `json:"url"`
	IDs               string             `json:"ids"`
	Connections       int                `json:"connections"`
	Mode              string             `json:"mode"`
	ElapsedSeconds    float64            `json:"elapsed_seconds"`
	Requests          int64              `json:"requests"`
	RequestsPerSecond float64            `json:"requests_per_second"`
	Statuses          map[string]int64   `json:"statuses"`
	TransportErrors   map[string]int64   `json:"transport_errors"`
	Errors            int64              `json:"errors"`
	LatencyMS         map[string]float64 `json:"latency_ms"`
	Percentiles       []pointJSON        `json:"percentiles"`
	Histogram         []bucketJSON       `json:"histogram"`
}

type pointJSON struct {
	Percentile float64 `json:"percentile"`
	MS         float64 `json:"ms"`
}

type bucketJSON struct {
	FromMS float64 `json:"from_ms"`
	ToMS   float64 `json:"to_ms"`
	Count  int64   `json:"count"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteJSON writes the report with its latency histogram (non-empty
// buckets) and percentile curve as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	out := reportJSON{
		Method: r.Method, URL: r.URL, IDs: r.IDs.String(), Connections: r.Connections, Mode: r.Mode(),
		ElapsedSeconds: r.Elapsed.Seconds(), Requests: r.Requests, RequestsPerSecond: r.RequestsPerSecond(),
		Statuses: map[string]int64{}, TransportErrors: r.TransportErrors, Errors: r.Errors(),
		LatencyMS: map[string]float64{"mean": ms(r.Latency.Mean()), "max": ms(r.Latency.Max())},
	}
	for s, c := range r.Statuses {
		out.Statuses[strconv.Itoa(s)] = c
	}
	for _, p := range Percentiles {
		out.LatencyMS["p"+strconv.FormatFloat(p, 'f', -1, 64)] = ms(r.Latency.Percentile(p))
	}
	for _, p := range r.Latency.Curve() {
		out.Percentiles = append(out.Percentiles, pointJSON{Percentile: p.Percentile, MS: ms(p.Latency)})
	}
	for _, b := range r.Latency.Buckets() {
		out.Histogram = append(out.Histogram, bucketJSON{FromMS: ms(b.From), ToMS: ms(b.To), Count: b.Count})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
