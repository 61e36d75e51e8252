package bench

import (
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCPULists(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		list string
		ok   bool
		n    int
	}{
		{"", true, 0}, {"0", true, 1}, {"0,1", true, 2}, {"1-3", true, 3}, {"0,2-3", true, 3},
		{"a", false, 0}, {"3-1", false, 0}, {"1,", false, 0}, {"-1", false, 0}, {"1-", false, 0},
	} {
		err := CheckCPUList(tc.list)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok %v", tc.list, err, tc.ok)
		}
		if tc.ok && countCPUs(tc.list) != tc.n {
			t.Errorf("%q: %d CPUs, want %d", tc.list, countCPUs(tc.list), tc.n)
		}
	}
	if got := pinnedTo("", "srv", "-x"); !slices.Equal(got, []string{"srv", "-x"}) {
		t.Errorf("unpinned: %v", got)
	}
	if got := pinnedTo("1", "srv"); !slices.Equal(got, []string{"taskset", "-c", "1", "srv"}) {
		t.Errorf("pinned: %v", got)
	}
	load, servers := SplitCPUs()
	_, noTaskset := exec.LookPath("taskset")
	if n := len(allowedCPUs()); n >= 2 && noTaskset == nil {
		if countCPUs(load) != n/2 || countCPUs(servers) != n-n/2 || CheckCPUList(load) != nil || CheckCPUList(servers) != nil {
			t.Errorf("%d CPUs split as %q and %q", n, load, servers)
		}
	} else if load != "" || servers != "" {
		t.Errorf("one CPU, or no taskset, split as %q and %q", load, servers)
	}
}

func TestWRKReport(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("Running 1s test @ http://127.0.0.1:1\n  1 threads and 4 connections\n")
	b.WriteString("streamgate-bench requests 1000\nstreamgate-bench errors 3\nstreamgate-bench duration_us 1002000\n")
	for _, p := range wrkPercentiles() {
		us := 100 + int(p*10)
		b.WriteString("streamgate-bench p " + strconv.FormatFloat(p, 'f', 3, 64) + " " + strconv.Itoa(us) + "\n")
	}
	res, err := wrkReport(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 1000 || res.Errors != 3 || res.Elapsed != 1002*time.Millisecond || res.Latency.Count() != 1000 {
		t.Fatalf("%+v, %d latencies", res, res.Latency.Count())
	}
	if p50 := res.Latency.Percentile(50); p50 < 590*time.Microsecond || p50 > 610*time.Microsecond {
		t.Errorf("p50 %v, want about 600µs", p50)
	}
	if max := res.Latency.Max(); max < 1090*time.Microsecond || max > 1110*time.Microsecond {
		t.Errorf("max %v, want about 1.1ms", max)
	}
	for _, bad := range []string{
		"",
		"streamgate-bench requests 10\nstreamgate-bench errors 0\n",
		"streamgate-bench requests ten\n",
		"streamgate-bench requests 10\nstreamgate-bench errors 0\nstreamgate-bench duration_us 5\nstreamgate-bench p x 7\n",
	} {
		if _, err := wrkReport(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: read without an error", bad)
		}
	}
}
