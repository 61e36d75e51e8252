package socket

// docs/writing-services.md states what the code does in a place that
// tests can hold to it: the service example. (The status table of
// docs/gateway.md is the gateway's: gateway/invoke/httpstatus_internal_test.go.)

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

// TestDocsServiceExample keeps the Go program of docs/writing-services.md
// equal to the body of Example_service, which go test compiles and runs:
// the page's copy cannot rot.
func TestDocsServiceExample(t *testing.T) {
	t.Parallel()
	doc := readFile(t, "../../docs/writing-services.md")
	src := readFile(t, "example_service_test.go")

	got, ok := goBlockAfter(doc, "\n## Go\n")
	if !ok {
		t.Fatal(`docs/writing-services.md has no go block under "## Go"`)
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
			t.Fatalf("docs/writing-services.md's example differs from Example_service at line %d:\ndoc:     %q\nexample: %q", i+1, g[i], w[i])
		}
	}
	t.Fatalf("docs/writing-services.md's example has %d lines, Example_service's body %d", len(g), len(w))
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
