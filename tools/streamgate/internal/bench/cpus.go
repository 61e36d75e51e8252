package bench

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// SplitCPUs is the default pinning of a comparison: the first half of
// the CPUs this process may run on for the load generator, the rest for
// the servers (e.g. "0" and "1" on two CPUs); both "" (no pinning) with
// fewer than two CPUs, where the system does not say, or without taskset.
func SplitCPUs() (loadCPUs, serverCPUs string) {
	cpus := allowedCPUs()
	if _, err := exec.LookPath("taskset"); err != nil || len(cpus) < 2 {
		return "", ""
	}
	half := len(cpus) / 2
	return cpuList(cpus[:half]), cpuList(cpus[half:])
}

// cpuList writes CPUs as taskset -c reads them: "0,1,2".
func cpuList(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}

// CheckCPUList accepts the CPU lists Options take, as taskset -c reads
// them: CPUs and ranges ("0", "0,2", "1-3"), and "" (no pinning).
func CheckCPUList(list string) error {
	if list == "" {
		return nil
	}
	for part := range strings.SplitSeq(list, ",") {
		from, to, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(from)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(to)
		}
		if err1 != nil || err2 != nil || a < 0 || b < a {
			return fmt.Errorf("bench: CPU list %q: expected CPUs and ranges such as 0,2-3", list)
		}
	}
	return nil
}

// checkPinning refuses CPU lists without taskset to apply them.
func checkPinning(lists ...string) error {
	for _, list := range lists {
		if err := CheckCPUList(list); err != nil {
			return err
		}
		if list != "" {
			if _, err := exec.LookPath("taskset"); err != nil {
				return errors.New("bench: pinning to CPUs needs taskset (util-linux) on PATH")
			}
		}
	}
	return nil
}

// countCPUs is how many CPUs a checked list names; 0 for "".
func countCPUs(list string) int {
	if list == "" {
		return 0
	}
	n := 0
	for part := range strings.SplitSeq(list, ",") {
		from, to, isRange := strings.Cut(part, "-")
		n++
		if isRange {
			a, _ := strconv.Atoi(from)
			b, _ := strconv.Atoi(to)
			n += b - a
		}
	}
	return n
}

// pinnedTo is command run on cpus (through taskset -c), or command when
// cpus is "".
func pinnedTo(cpus string, command ...string) []string {
	if cpus == "" {
		return append([]string(nil), command...)
	}
	return append([]string{"taskset", "-c", cpus}, command...)
}
