package load

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Series is one latency curve of a chart.
type Series struct {
	Name    string
	Latency *Histogram
}

// chart geometry, in SVG user units.
const (
	chartW, chartH       = 760, 420
	padL, padR, padT     = 70, 20, 40
	padB                 = 60
	legendLine           = 18
	maxNines             = 5.0 // the x axis ends at 99.999%
	percentileMaxAxisPos = maxNines + 0.6
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

// WriteSVG draws latency by percentile for each series as a plain SVG
// document: the x axis in "nines" (50%, 90%, 99%, 99.9%, …, then max),
// the y axis in milliseconds.
func WriteSVG(w io.Writer, title string, series []Series) error {
	var top time.Duration
	for _, s := range series {
		top = max(top, s.Latency.Max())
	}
	yMax := niceCeil(ms(top))
	legendH := legendLine * len(series)
	height := chartH + legendH
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(p float64) float64 {
		n := percentileMaxAxisPos
		if p < 100 {
			n = min(-math.Log10(1-p/100), maxNines)
		}
		return padL + plotW*n/percentileMaxAxisPos
	}
	y := func(v float64) float64 { return padT + plotH*(1-v/yMax) }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", chartW, height, chartW, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15">%s</text>`+"\n", padL, html.EscapeString(title))
	// Grid and axes.
	for i := 0; i <= 5; i++ {
		v := yMax * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y(v), chartW-padR, y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y(v)+4, trimFloat(v))
	}
	ticks := []struct {
		p     float64
		label string
	}{{50, "50%"}, {90, "90%"}, {99, "99%"}, {99.9, "99.9%"}, {99.99, "99.99%"}, {99.999, "99.999%"}, {100, "max"}}
	for _, t := range ticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(t.p), padT, x(t.p), chartH-padB)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t.p), chartH-padB+16, t.label)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">percentile</text>`+"\n", padL+int(plotW/2), chartH-padB+36)
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">latency (ms)</text>`+"\n", padT+int(plotH/2))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", padL, padT, plotW, plotH)
	// Curves and legend.
	for i, s := range series {
		color := palette[i%len(palette)]
		var pts []string
		for _, p := range s.Latency.Curve() {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Percentile), y(ms(p.Latency))))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		ly := chartH + legendLine*i + 4
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`+"\n", padL, ly-4, color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", padL+20, ly, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to a round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8
// times a power of ten; at least 0.1).
func niceCeil(v float64) float64 {
	if v <= 0.1 {
		return 0.1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.3g", v), ".0") }
