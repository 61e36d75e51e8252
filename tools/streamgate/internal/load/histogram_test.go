package load_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// within reports whether got is want to three significant digits (the
// histogram's precision), with a little slack for bucket edges.
func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(want)*0.002
}

func TestHistogramPercentilesOfKnownDistribution(t *testing.T) {
	t.Parallel()
	h := load.NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	if h.Count() != 1000 {
		t.Fatalf("count %d, want 1000", h.Count())
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 500 * time.Millisecond},
		{90, 900 * time.Millisecond},
		{99, 990 * time.Millisecond},
		{99.9, 999 * time.Millisecond},
		{100, 1000 * time.Millisecond},
	} {
		if got := h.Percentile(tc.p); !within(got, tc.want) {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := h.Max(); !within(got, time.Second) {
		t.Errorf("max %v, want 1s", got)
	}
	if got := h.Mean(); !within(got, 500500*time.Microsecond) {
		t.Errorf("mean %v, want 500.5ms", got)
	}
}

func TestHistogramSkewedDistribution(t *testing.T) {
	t.Parallel()
	// 990 fast answers and 10 slow ones: p99 is still fast, p99.9 slow.
	h := load.NewHistogram()
	for range 990 {
		h.Record(200 * time.Microsecond)
	}
	for range 10 {
		h.Record(80 * time.Millisecond)
	}
	if got := h.Percentile(99); !within(got, 200*time.Microsecond) {
		t.Errorf("p99 %v, want 200µs", got)
	}
	if got := h.Percentile(99.9); !within(got, 80*time.Millisecond) {
		t.Errorf("p99.9 %v, want 80ms", got)
	}
}

func TestHistogramMergeAndBuckets(t *testing.T) {
	t.Parallel()
	a, b := load.NewHistogram(), load.NewHistogram()
	for i := 1; i <= 500; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(500+i) * time.Millisecond)
	}
	a.Merge(b)
	if a.Count() != 1000 || !within(a.Percentile(50), 500*time.Millisecond) || !within(a.Max(), time.Second) {
		t.Fatalf("merged: count %d p50 %v max %v", a.Count(), a.Percentile(50), a.Max())
	}
	var n int64
	last := time.Duration(-1)
	for _, bk := range a.Buckets() {
		if bk.Count <= 0 || bk.From < last || bk.To < bk.From {
			t.Fatalf("bad bucket %+v after %v", bk, last)
		}
		last = bk.To
		n += bk.Count
	}
	if n != 1000 {
		t.Fatalf("buckets hold %d, want 1000", n)
	}
	curve := a.Curve()
	if len(curve) < 5 || curve[len(curve)-1].Percentile != 100 || !within(curve[len(curve)-1].Latency, time.Second) {
		t.Fatalf("curve %v", curve)
	}
	for i := 1; i < len(curve); i++ {
		if curve[i].Percentile <= curve[i-1].Percentile || curve[i].Latency < curve[i-1].Latency {
			t.Fatalf("curve not increasing at %d: %v", i, curve)
		}
	}
}

func TestHistogramExtremes(t *testing.T) {
	t.Parallel()
	h := load.NewHistogram()
	if h.Percentile(50) != 0 || h.Curve() != nil {
		t.Fatal("an empty histogram has no percentiles")
	}
	h.Record(0)
	h.Record(time.Hour) // beyond MaxLatency: counted as MaxLatency
	if h.Count() != 2 || !within(h.Max(), load.MaxLatency) {
		t.Fatalf("count %d max %v", h.Count(), h.Max())
	}
}

// TestHistogramJSONRoundTrip: a histogram written as JSON and read back
// has the same count and percentiles (a load run in another process
// sends its latencies so).
func TestHistogramJSONRoundTrip(t *testing.T) {
	t.Parallel()
	h := load.NewHistogram()
	for i := 1; i <= 5000; i++ {
		h.Record(time.Duration(i*i) * time.Microsecond)
	}
	h.RecordN(3*time.Second, 7)
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	got := load.NewHistogram()
	if err := json.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if got.Count() != h.Count() || got.Count() != 5007 {
		t.Fatalf("count %d, want %d", got.Count(), h.Count())
	}
	for _, p := range []float64{1, 50, 90, 99, 99.9, 100} {
		if got.Percentile(p) != h.Percentile(p) {
			t.Errorf("p%v: %v, want %v", p, got.Percentile(p), h.Percentile(p))
		}
	}
	for _, bad := range []string{`{}`, `[[1,-2]]`, `[["a",1]]`} {
		if err := json.Unmarshal([]byte(bad), load.NewHistogram()); err == nil {
			t.Errorf("%s: read without an error", bad)
		}
	}
}
