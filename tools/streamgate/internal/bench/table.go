package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// baseline is the system the ratios compare with: the first.
func (r *Result) baseline() *SystemResult { return r.Systems[0] }

// Row is one system's figures and its ratios to the baseline.
type Row struct {
	Name, Title       string
	RequestsPerSecond float64
	RequestsRatio     float64
	P50, P99          time.Duration
	P50Ratio          float64
	P99Ratio          float64
	// CPUPerRequest is each process's CPU time per request, by role;
	// TotalCPUPerRequest theirs together, the headline figure.
	CPUPerRequest      map[string]time.Duration
	TotalCPUPerRequest time.Duration
	CPURatio           float64
	LoadCPUPerRequest  time.Duration
	Errors             int64
	RoundRates         []float64
	// At the fixed rate (Options.FixedRate; zero without it): the rate
	// reached (below the rate asked when the load or the system fell
	// behind), the latencies, p99 as a ratio to the baseline's, and the
	// errors.
	FixedReached       float64
	FixedP50, FixedP99 time.Duration
	FixedP99Ratio      float64
	FixedErrors        int64
}

// Rows computes each system's figures and ratios.
func (r *Result) Rows() []Row {
	base := r.baseline()
	baseCPU := base.CPUPerRequest(base.TotalCPU())
	var rows []Row
	for _, s := range r.Systems {
		row := Row{
			Name: s.Name, Title: s.Title,
			RequestsPerSecond: s.RequestsPerSecond(),
			RequestsRatio:     ratio(s.RequestsPerSecond(), base.RequestsPerSecond()),
			P50:               s.Latency.Percentile(50), P99: s.Latency.Percentile(99),
			CPUPerRequest:      map[string]time.Duration{},
			TotalCPUPerRequest: s.CPUPerRequest(s.TotalCPU()),
			LoadCPUPerRequest:  s.CPUPerRequest(s.LoadCPU),
			Errors:             s.Errors, RoundRates: s.RoundRates,
		}
		row.P50Ratio = ratio(float64(row.P50), float64(base.Latency.Percentile(50)))
		row.P99Ratio = ratio(float64(row.P99), float64(base.Latency.Percentile(99)))
		row.CPURatio = ratio(float64(row.TotalCPUPerRequest), float64(baseCPU))
		for role, d := range s.CPU {
			row.CPUPerRequest[role] = s.CPUPerRequest(d)
		}
		if s.Fixed != nil {
			row.FixedP50, row.FixedP99 = s.Fixed.Latency.Percentile(50), s.Fixed.Latency.Percentile(99)
			row.FixedErrors = s.Fixed.Errors
			row.FixedReached = ratio(float64(s.Fixed.Requests), s.Fixed.Elapsed.Seconds())
			if base.Fixed != nil {
				row.FixedP99Ratio = ratio(float64(row.FixedP99), float64(base.Fixed.Latency.Percentile(99)))
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// micros writes d in microseconds, one decimal.
func micros(d time.Duration) string {
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond))
}

// cpuCell is "gateway + service = total" or the single process's figure,
// in µs per request.
func (row Row) cpuCell() string {
	if v, ok := row.CPUPerRequest["server"]; ok {
		return micros(v)
	}
	return micros(row.CPUPerRequest["gateway"]) + " + " + micros(row.CPUPerRequest["service"]) + " = " + micros(row.TotalCPUPerRequest)
}

// loadSetup says where the load and the servers ran.
func (o Options) loadSetup() string {
	switch {
	case o.WRK != "":
		return fmt.Sprintf("load: wrk %s, servers %s", where(o.LoadCPUs), where(o.ServerCPUs))
	case len(o.LoadCommand) > 0:
		return fmt.Sprintf("load: its own process %s, servers %s", where(o.LoadCPUs), where(o.ServerCPUs))
	}
	return "load: in the comparing process, servers " + where(o.ServerCPUs)
}

// where says where a process pinned to cpus ran.
func where(cpus string) string {
	if cpus == "" {
		return "unpinned"
	}
	return "on CPUs " + cpus
}

// fixedRateSource says where the fixed rate came from.
func (o Options) fixedRateSource() string {
	if o.FixedRate == FixedRateHalf {
		return "half of " + SystemDirect + "'s rate over the rounds"
	}
	return "as asked"
}

// WriteMarkdown writes the comparison as a markdown table, CPU per
// request first, with the load, the machine and the date above it.
func (r *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "%d connections, closed loop, %v per run, %d round(s) alternating %s; %d users, API-key auth; %s; streamgate gateways log at %s; nproc %d; %s.\n\n",
		o.Connections, o.Duration, o.Rounds, strings.Join(o.Systems, " "), o.Users, o.loadSetup(), strings.ToLower(o.GatewayLogLevel.String()), r.NumCPU, r.Date.Format("2006-01-02 15:04 MST"))
	x := "× " + r.baseline().Name
	fixed := r.baseline().Fixed
	if fixed != nil {
		fmt.Fprintf(&b, "Then each system once more at a fixed rate of %d req/s (%s; open loop, %v, the load process, never wrk): the req/s it reached (less: the load or the system fell behind, and the latencies count the wait), its p50 and p99 there, and p99 %s.\n\n",
			fixed.Rate, o.fixedRateSource(), o.Duration, x)
	}
	fmt.Fprintf(&b, "| system | CPU µs / req (gateway + service) | %s | req/s | %s | p50 | p99 | %s | load generator CPU µs / req | errors |", x, x, x)
	line := "|---|---|---|---|---|---|---|---|---|---|"
	if fixed != nil {
		fmt.Fprintf(&b, " req/s reached | p50 @ %d req/s | p99 @ %d req/s | %s |", fixed.Rate, fixed.Rate, x)
		line += "---|---|---|---|"
	}
	b.WriteString("\n" + line + "\n")
	for _, row := range r.Rows() {
		fmt.Fprintf(&b, "| %s | %s | **%.2f** | %.0f | %.2f | %s | %s | %.2f | %s | %d |",
			row.Title, row.cpuCell(), row.CPURatio, row.RequestsPerSecond, row.RequestsRatio,
			load.FormatLatency(row.P50), load.FormatLatency(row.P99), row.P99Ratio, micros(row.LoadCPUPerRequest), row.Errors)
		if fixed != nil {
			p99 := load.FormatLatency(row.FixedP99)
			if row.FixedErrors > 0 {
				p99 += fmt.Sprintf(" (%d errors)", row.FixedErrors)
			}
			fmt.Fprintf(&b, " %.0f | %s | %s | **%.2f** |", row.FixedReached, load.FormatLatency(row.FixedP50), p99, row.FixedP99Ratio)
		}
		b.WriteString("\n")
	}
	for _, c := range r.LogCosts() {
		fmt.Fprintf(&b, "\nThe access log at %s: %s costs **%+.1f%%** CPU per request and %+.1f%% req/s against %s.\n",
			strings.ToLower(o.GatewayLogLevel.String()), c.System, 100*(c.CPURatio-1), 100*(c.RequestsRatio-1), c.Warn)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// LogCost is what the gateway's log level costs a system: its figures
// against its peer at warn (WarnSystems), both measured in the run.
type LogCost struct {
	System, Warn string
	// CPURatio is System's CPU per request over Warn's; RequestsRatio
	// its req/s over Warn's.
	CPURatio, RequestsRatio float64
}

// LogCosts pairs each WarnSystems system in the run with its peer at the
// run's level, in the order the peers ran.
func (r *Result) LogCosts() []LogCost {
	by := map[string]*SystemResult{}
	for _, s := range r.Systems {
		by[s.Name] = s
	}
	var costs []LogCost
	for _, s := range r.Systems {
		for warn, peer := range warnPeers {
			w := by[warn]
			if peer != s.Name || w == nil {
				continue
			}
			costs = append(costs, LogCost{
				System: s.Name, Warn: warn,
				CPURatio:      ratio(float64(s.CPUPerRequest(s.TotalCPU())), float64(w.CPUPerRequest(w.TotalCPU()))),
				RequestsRatio: ratio(s.RequestsPerSecond(), w.RequestsPerSecond()),
			})
		}
	}
	return costs
}

// WriteText writes the comparison for a terminal: the table, then each
// run's requests per second and CPU time per request.
func (r *Result) WriteText(w io.Writer) error {
	if err := r.WriteMarkdown(w); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("\nreq/s by round:\n")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, "  %-21s", s.Name)
		for _, v := range s.RoundRates {
			fmt.Fprintf(&b, " %9.1f", v)
		}
		b.WriteString("\n")
	}
	b.WriteString("CPU µs / req by round:\n")
	for _, s := range r.Systems {
		fmt.Fprintf(&b, "  %-21s", s.Name)
		for _, d := range s.RoundCPU {
			fmt.Fprintf(&b, " %9s", micros(d))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSVG draws every system's latency by percentile, each labelled
// with its requests per second as a ratio to the baseline's.
func (r *Result) WriteSVG(w io.Writer) error {
	var series []load.Series
	for i, row := range r.Rows() {
		series = append(series, load.Series{
			Name:    fmt.Sprintf("%s: %.2f× the req/s of %s, p99 %s", row.Title, row.RequestsRatio, r.Systems[0].Name, load.FormatLatency(row.P99)),
			Latency: r.Systems[i].Latency,
		})
	}
	title := fmt.Sprintf("GET /v1/users/{id}, %d connections, closed loop (nproc %d, %s)", r.Options.Connections, r.NumCPU, r.Date.Format("2006-01-02"))
	return load.WriteSVG(w, title, series)
}
