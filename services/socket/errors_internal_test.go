package socket

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeStatusTable keeps README's "Error codes and HTTP statuses"
// table equal to httpStatus, row for row: the table is documented once,
// and the README cannot say otherwise.
func TestReadmeStatusTable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n### Error codes and HTTP statuses\n")
	if !ok {
		t.Fatal(`README.md has no "### Error codes and HTTP statuses"`)
	}
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	codeRE := regexp.MustCompile(`\b[A-Z]+(?:_[A-Z]+)*\b`)
	reasonRE := regexp.MustCompile("`([a-z_]+)`")
	documented := map[statusKey]int{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		status, err := strconv.Atoi(strings.TrimSpace(cells[len(cells)-1]))
		if !strings.HasPrefix(line, "|") || len(cells) != 2 || err != nil {
			continue
		}
		reasons := []string{""}
		if m := reasonRE.FindAllStringSubmatch(cells[0], -1); m != nil {
			reasons = reasons[:0]
			for _, r := range m {
				reasons = append(reasons, r[1])
			}
		}
		for _, c := range codeRE.FindAllString(reasonRE.ReplaceAllString(cells[0], ""), -1) {
			for _, r := range reasons {
				documented[statusKey{Code(c), r}] = status
			}
		}
	}
	for k, want := range httpStatus {
		if got, ok := documented[k]; !ok || got != want {
			t.Errorf("README says %s reason %q is %d (0: missing); the table says %d", k.code, k.reason, got, want)
		}
	}
	for k, got := range documented {
		if _, ok := httpStatus[k]; !ok {
			t.Errorf("README lists %s reason %q (%d), the table does not", k.code, k.reason, got)
		}
	}
}
