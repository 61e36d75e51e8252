package socket

// README.md states what the code does in a place that tests can hold to
// it: the service example. (Its status table is the gateway's:
// gateway/httpstatus_internal_test.go.)

import (
	"os"
	"strings"
	"testing"
)

// readFile returns a file's text.
func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadmeServiceExample keeps the program of README's "Writing a
// service" equal to the body of Example_service, which go test compiles
// and runs: the README's copy cannot rot.
func TestReadmeServiceExample(t *testing.T) {
	t.Parallel()
	readme := readFile(t, "../../README.md")
	src := readFile(t, "example_service_test.go")

	got, ok := goBlockAfter(readme, "\n## Writing a service\n")
	if !ok {
		t.Fatal(`README.md has no go block under "## Writing a service"`)
	}
	want, ok := exampleBody(src, "Example_service")
	if !ok {
		t.Fatal("example_service_test.go has no Example_service with // Output:")
	}
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			t.Fatalf("README's example differs from Example_service at line %d:\nREADME:  %q\nexample: %q", i+1, g[i], w[i])
		}
	}
	t.Fatalf("README's example has %d lines, Example_service's body %d", len(g), len(w))
}

// goBlockAfter returns the text of the first ```go block after heading.
func goBlockAfter(doc, heading string) (string, bool) {
	_, rest, ok := strings.Cut(doc, heading)
	if !ok {
		return "", false
	}
	if next := strings.Index(rest, "\n## "); next >= 0 {
		rest = rest[:next]
	}
	_, rest, ok = strings.Cut(rest, "```go\n")
	if !ok {
		return "", false
	}
	block, _, ok := strings.Cut(rest, "```\n")
	return block, ok
}

// exampleBody returns the body of the example function name up to its
// // Output: comment, one tab of indentation removed.
func exampleBody(src, name string) (string, bool) {
	_, rest, ok := strings.Cut(src, "\nfunc "+name+"() {\n")
	if !ok {
		return "", false
	}
	body, _, ok := strings.Cut(rest, "\t// Output:")
	if !ok {
		return "", false
	}
	lines := strings.SplitAfter(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	return strings.Join(lines, ""), true
}
