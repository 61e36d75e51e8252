package load

import (
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram records latencies with three significant digits (HdrHistogram,
// microsecond units) from 1 µs up to MaxLatency; longer ones count as
// MaxLatency. It is not safe for concurrent use.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// MaxLatency is the longest latency a Histogram tells apart.
const MaxLatency = 10 * time.Minute

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{h: hdrhistogram.New(1, MaxLatency.Microseconds(), 3)}
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	us := max(d.Microseconds(), 1)
	_ = h.h.RecordValue(min(us, MaxLatency.Microseconds()))
}

// RecordN adds n latencies of d.
func (h *Histogram) RecordN(d time.Duration, n int64) {
	us := max(d.Microseconds(), 1)
	_ = h.h.RecordValues(min(us, MaxLatency.Microseconds()), n)
}

// MarshalJSON writes the histogram as its non-empty buckets, each the
// pair [lowest latency in µs, count], which UnmarshalJSON reads back
// into the same histogram (for a load run in another process).
func (h *Histogram) MarshalJSON() ([]byte, error) {
	pairs := [][2]int64{}
	for _, b := range h.Buckets() {
		pairs = append(pairs, [2]int64{b.From.Microseconds(), b.Count})
	}
	return json.Marshal(pairs)
}

// UnmarshalJSON reads what MarshalJSON wrote, replacing h's latencies.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var pairs [][2]int64
	if err := json.Unmarshal(b, &pairs); err != nil {
		return err
	}
	*h = *NewHistogram()
	for _, p := range pairs {
		if p[1] < 0 {
			return errors.New("load: a histogram bucket with a negative count")
		}
		h.RecordN(time.Duration(p[0])*time.Microsecond, p[1])
	}
	return nil
}

// Merge adds every latency of o.
func (h *Histogram) Merge(o *Histogram) { h.h.Merge(o.h) }

// Count is how many latencies were recorded.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Percentile returns the latency that p percent (0–100) of the recorded
// ones do not exceed, within the histogram's precision; 0 when empty.
func (h *Histogram) Percentile(p float64) time.Duration {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtPercentile(p)) * time.Microsecond
}

// Max is the longest latency recorded, within the histogram's precision.
func (h *Histogram) Max() time.Duration {
	return time.Duration(h.h.Max()) * time.Microsecond
}

// Mean is the average latency.
func (h *Histogram) Mean() time.Duration {
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// Bucket is a range of latencies and how many fell in it.
type Bucket struct {
	From  time.Duration
	To    time.Duration
	Count int64
}

// Buckets returns the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for _, b := range h.h.Distribution() {
		if b.Count > 0 {
			out = append(out, Bucket{From: time.Duration(b.From) * time.Microsecond, To: time.Duration(b.To) * time.Microsecond, Count: b.Count})
		}
	}
	return out
}

// PercentilePoint is one point of a latency-by-percentile curve.
type PercentilePoint struct {
	Percentile float64
	Latency    time.Duration
}

// Curve returns the latency at percentiles spaced evenly on the
// "number of nines" scale (50, 68, 80, 90, …, 99.9, …) up to the highest
// the count supports, then 100 (the max).
func (h *Histogram) Curve() []PercentilePoint {
	if h.Count() == 0 {
		return nil
	}
	var out []PercentilePoint
	limit := 100 * (1 - 1/float64(h.Count()))
	for k := 3; ; k++ {
		p := 100 * (1 - math.Pow(10, -float64(k)/10))
		if p > limit || p > 99.999 {
			break
		}
		out = append(out, PercentilePoint{Percentile: p, Latency: h.Percentile(p)})
	}
	return append(out, PercentilePoint{Percentile: 100, Latency: h.Max()})
}
