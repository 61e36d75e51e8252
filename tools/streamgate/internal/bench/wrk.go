package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// wrkScript makes wrk read GET /v1/users/{1..users} in turn with the API
// key (both from the environment, never the command line), and report
// what it measured as lines wrkReport parses.
const wrkScript = `local users = tonumber(os.getenv("STREAMGATE_BENCH_USERS"))
wrk.headers["X-API-Key"] = os.getenv("STREAMGATE_BENCH_KEY")
local n = 0
request = function()
  n = n % users + 1
  return wrk.format("GET", "/v1/users/" .. n)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("streamgate-bench requests %d\n", summary.requests))
  io.write(string.format("streamgate-bench errors %d\n", e.connect + e.read + e.write + e.timeout + e.status))
  io.write(string.format("streamgate-bench duration_us %d\n", summary.duration))
  for _, p in ipairs(PERCENTILES) do
    io.write(string.format("streamgate-bench p %.3f %d\n", p, latency:percentile(p)))
  end
end
`

// envUsers carries the number of users to the wrk script.
const envUsers = "STREAMGATE_BENCH_USERS"

// wrkPercentiles are the percentiles wrk reports, from which the latency
// histogram is rebuilt (wrk keeps its own and gives no buckets).
func wrkPercentiles() []float64 {
	var ps []float64
	for p := 1.0; p <= 99; p++ {
		ps = append(ps, p)
	}
	return append(ps, 99.5, 99.9, 99.99, 100)
}

// writeWRKScript writes the wrk script into dir and returns its path.
func writeWRKScript(dir string) (string, error) {
	var ps []string
	for _, p := range wrkPercentiles() {
		ps = append(ps, strconv.FormatFloat(p, 'f', -1, 64))
	}
	script := "local PERCENTILES = {" + strings.Join(ps, ", ") + "}\n" + wrkScript
	path := filepath.Join(dir, "users.lua")
	return path, os.WriteFile(path, []byte(script), 0o600)
}

// wrkSeconds is d in whole seconds, at least 1: wrk's -d unit.
func wrkSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))) + "s"
}

// measureWRK loads url with wrk (WRK, on LoadCPUs: one thread per CPU),
// a warm-up run first; mark runs just before the measured run.
// It is closed loop only (rate must be 0: wrk cannot hold a rate).
func (r *runner) measureWRK(ctx context.Context, url string, _ int, mark func() error) (loadResult, error) {
	threads := min(max(1, countCPUs(r.o.LoadCPUs)), r.o.Connections)
	run := func(d time.Duration) (loadResult, error) {
		ctx, cancel := context.WithTimeout(ctx, d+loadGrace)
		defer cancel()
		args := append(pinnedTo(r.o.LoadCPUs, r.o.WRK),
			"-t", strconv.Itoa(threads), "-c", strconv.Itoa(r.o.Connections), "-d", wrkSeconds(d),
			"--timeout", "10s", "-s", r.wrkScript, url)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), EnvKey+"="+r.key, envUsers+"="+strconv.Itoa(r.o.Users))
		var out bytes.Buffer
		errs := &tail{max: 4096}
		cmd.Stdout, cmd.Stderr = &out, errs
		cmd.SysProcAttr = dieWithParent()
		if err := cmd.Run(); err != nil {
			return loadResult{}, fmt.Errorf("wrk: %w: %s", err, errs)
		}
		res, err := wrkReport(&out)
		if err != nil {
			return loadResult{}, err
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		return res, nil
	}
	if r.o.Warmup > 0 {
		if _, err := run(r.o.Warmup); err != nil {
			return loadResult{}, err
		}
	}
	if err := mark(); err != nil {
		return loadResult{}, err
	}
	return run(r.o.Duration)
}

// wrkReport parses the lines wrkScript's done writes; the latencies are
// rebuilt from the percentiles (each band's requests at its upper
// percentile's latency), so the histogram is as fine as wrkPercentiles.
func wrkReport(out io.Reader) (loadResult, error) {
	res := loadResult{Latency: load.NewHistogram()}
	type point struct {
		p  float64
		us int64
	}
	var points []point
	seen := map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "streamgate-bench" {
			continue
		}
		last, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
		if err != nil || last < 0 {
			return loadResult{}, fmt.Errorf("wrk: unreadable report line %q", sc.Text())
		}
		seen[fields[1]] = true
		switch fields[1] {
		case "requests":
			res.Requests = last
		case "errors":
			res.Errors = last
		case "duration_us":
			res.Elapsed = time.Duration(last) * time.Microsecond
		case "p":
			p, err := strconv.ParseFloat(fields[2], 64)
			if err != nil || len(fields) != 4 {
				return loadResult{}, fmt.Errorf("wrk: unreadable report line %q", sc.Text())
			}
			points = append(points, point{p, last})
		}
	}
	if !seen["requests"] || !seen["errors"] || !seen["duration_us"] {
		return loadResult{}, errors.New("wrk: no report from the script (is it wrk 4?)")
	}
	done := int64(0)
	for _, pt := range points {
		n := int64(math.Round(pt.p/100*float64(res.Requests))) - done
		if n > 0 {
			res.Latency.RecordN(time.Duration(pt.us)*time.Microsecond, n)
			done += n
		}
	}
	return res, nil
}
