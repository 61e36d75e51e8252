package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// WriteMarkdown writes the rows as a markdown table, with the run's
// setup, the machine and the date above it.
func (r *FanoutResult) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	o := r.Options
	conflate := fmt.Sprintf("resource %s", r.Resource)
	switch {
	case !r.ConflateKeyKnown:
		conflate += " (this gateway has no conflate key: it conflates nothing)"
	case o.Conflate:
		conflate += " (the gateway's default: conflated under overload)"
	default:
		conflate += " (conflate: false)"
	}
	fmt.Fprintf(&b, "%d WebSocket subscribers over %d topic(s), %v of publishing a row; %s; subscribers %s, server (gateway + publishing service) %s; the gateway logs at %s; nproc %d; %s.\n\n",
		o.Subscribers, o.Topics, o.Duration, conflate, where(o.LoadCPUs), where(o.ServerCPUs), strings.ToLower(o.LogLevel.String()), r.NumCPU, r.Date.Format("2006-01-02 15:04 MST"))
	if o.Floor {
		b.WriteString("Each rate then ran against the floor: a bare broadcaster on the same CPUs writing the same frames straight to the sockets, one write each (no service, hub, queue or writer goroutine), the least a server spends a delivery here.\n\n")
	}
	b.WriteString("| states/s a topic | connected | published | deliveries | deliveries/s | p50 | p90 | p99 | max | lost | not there at the end | dup | out of order | skipped | gapped | on the last state | cut off (4408) | server CPU | server CPU / 100k deliveries | subscribers' CPU |")
	line := "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	if o.Floor {
		b.WriteString(" floor's CPU / 100k deliveries | × floor |")
		line += "---|---|"
	}
	b.WriteString("\n" + line + "\n")
	for _, row := range r.Rows {
		fmt.Fprintf(&b, "| %v | %d/%d | %d | %d | %.0f | %s | %s | %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | **%s** | %s |",
			row.Rate, row.Connected, o.Subscribers, row.Published, row.Deliveries, row.DeliveriesPerSecond(),
			latency(row.Latency, 50), latency(row.Latency, 90), latency(row.Latency, 99), fmtLatency(row.Latency.Max()),
			row.Lost, row.Missing, row.Duplicates, row.OutOfOrder, row.Skipped, row.Gapped, row.Latest, row.CutOff,
			seconds(row.ServerCPU), seconds(row.ServerCPUPer100k()), seconds(row.CPU))
		if row.Floor != nil {
			fmt.Fprintf(&b, " %s | **%.2f** |", seconds(row.Floor.ServerCPUPer100k()), row.CPUOverFloor())
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteText writes the table for a terminal, then what went wrong in
// any row: subscribers refused, broken, unreadable frames.
func (r *FanoutResult) WriteText(w io.Writer) error {
	if err := r.WriteMarkdown(w); err != nil {
		return err
	}
	var b strings.Builder
	for _, row := range r.Rows {
		if row.Refused > 0 {
			fmt.Fprintf(&b, "rate %v: %d subscribers could not subscribe, the first: %s\n", row.Rate, row.Refused, row.FirstRefusal)
		}
		if row.Retries > 0 {
			fmt.Fprintf(&b, "rate %v: %d subscribes answered 503 and sent again\n", row.Rate, row.Retries)
		}
		if row.Broken > 0 || row.Unreadable > 0 {
			fmt.Fprintf(&b, "rate %v: %d sockets broke (closed without 4408), %d frames unreadable\n", row.Rate, row.Broken, row.Unreadable)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// latency is h's p-th percentile, "-" when it holds none.
func latency(h *load.Histogram, p float64) string {
	if h == nil || h.Count() == 0 {
		return "-"
	}
	return fmtLatency(h.Percentile(p))
}

// fmtLatency writes d to three significant figures or so: 0.84ms, 12.3ms,
// 1.24s, 21.2s.
func fmtLatency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case ms >= 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.2fms", ms)
}
