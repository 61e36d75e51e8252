package socket

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
	"github.com/streamgate/streamgate/status"
)

// latencyBuckets is the size of the latency histogram: bucket i counts
// latencies below 2^i microseconds (the last one counts the rest).
const latencyBuckets = 32

// actionStats are one action's counters. All fields are updated atomically
// except byCode.
type actionStats struct {
	count     atomic.Uint64
	errors    atomic.Uint64
	coalesced atomic.Uint64 // requests answered by another request's handler run
	inFlight  atomic.Int64
	totalNs   atomic.Int64
	maxNs     atomic.Int64
	buckets   [latencyBuckets]atomic.Uint64

	mu     sync.Mutex // guards byCode
	byCode map[status.Code]uint64
}

// statsObserver is the observer that keeps each action's stats (the
// Stats of Describe's actions).
type statsObserver struct{ noServerObserver }

var _ serverObserver = statsObserver{}

func (statsObserver) handlerBegan(a *action) { a.stats.inFlight.Add(1) }

func (statsObserver) handlerEnded(a *action, d time.Duration, e *status.Error) {
	a.stats.inFlight.Add(-1)
	a.stats.observe(d, status.CodeOf(errOrNil(e)))
}

func (statsObserver) coalesced(a *action) { a.stats.coalesced.Add(1) }

// observe records one answered request.
func (s *actionStats) observe(d time.Duration, code status.Code) {
	s.count.Add(1)
	ns := int64(d)
	s.totalNs.Add(ns)
	for {
		cur := s.maxNs.Load()
		if ns <= cur || s.maxNs.CompareAndSwap(cur, ns) {
			break
		}
	}
	s.buckets[bucketOf(d)].Add(1)
	if code != "" {
		s.errors.Add(1)
		s.mu.Lock()
		if s.byCode == nil {
			s.byCode = map[status.Code]uint64{}
		}
		s.byCode[code]++
		s.mu.Unlock()
	}
}

func bucketOf(d time.Duration) int {
	us := uint64(d / time.Microsecond)
	return min(bits.Len64(us), latencyBuckets-1)
}

// quantile estimates the q-quantile as the upper bound of the bucket it
// falls in.
func (s *actionStats) quantile(q float64, counts *[latencyBuckets]uint64, total uint64) time.Duration {
	if total == 0 {
		return 0
	}
	rank := uint64(q * float64(total))
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen > rank {
			return min(time.Duration(uint64(1)<<i)*time.Microsecond, time.Duration(s.maxNs.Load()))
		}
	}
	return time.Duration(s.maxNs.Load())
}

// snapshot returns the counters as the Describe catalogue shows them.
func (s *actionStats) snapshot() *socketv1.ActionStats {
	var counts [latencyBuckets]uint64
	var total uint64
	for i := range s.buckets {
		counts[i] = s.buckets[i].Load()
		total += counts[i]
	}
	out := &socketv1.ActionStats{
		Count:       s.count.Load(),
		Coalesced:   s.coalesced.Load(),
		Errors:      s.errors.Load(),
		InFlight:    s.inFlight.Load(),
		LatencyP50:  durationpb.New(s.quantile(0.50, &counts, total)),
		LatencyP99:  durationpb.New(s.quantile(0.99, &counts, total)),
		LatencyMax:  durationpb.New(time.Duration(s.maxNs.Load())),
		LatencyMean: durationpb.New(0),
	}
	if out.Count > 0 {
		out.LatencyMean = durationpb.New(time.Duration(s.totalNs.Load() / int64(out.Count)))
	}
	s.mu.Lock()
	if len(s.byCode) > 0 {
		out.ErrorsByCode = make(map[string]uint64, len(s.byCode))
		for c, n := range s.byCode {
			out.ErrorsByCode[string(c)] = n
		}
	}
	s.mu.Unlock()
	return out
}
