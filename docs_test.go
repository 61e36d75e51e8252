package streamgate_test

import (
	"os"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// TestWritingServicesExamples keeps docs/writing-services.md's programs
// equal to the ones the tests run: the body of Example_service
// (services/socket/example_service_test.go),
// services/node/examples/hello.js and services/python/examples/hello.py.
func TestWritingServicesExamples(t *testing.T) {
	doc := readText(t, "docs/writing-services.md")
	goExample, ok := exampleBody(readText(t, "services/socket/example_service_test.go"), "Example_service")
	if !ok {
		t.Fatal("services/socket/example_service_test.go has no Example_service with // Output:")
	}
	for _, c := range []struct{ heading, lang, want string }{
		{"\n## Go\n", "go", goExample},
		{"\n## Node.js\n", "js", readText(t, "services/node/examples/hello.js")},
		{"\n## Python\n", "python", readText(t, "services/python/examples/hello.py")},
	} {
		got, ok := codeBlock(doc, c.heading, c.lang)
		if !ok {
			t.Errorf("docs/writing-services.md has no %s block under %q", c.lang, strings.TrimSpace(c.heading))
			continue
		}
		if got != c.want {
			t.Errorf("docs/writing-services.md's %s example differs from the program the tests run:\n%s", c.lang, got)
		}
	}
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

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// codeBlock returns the first ```lang block after heading, before the
// next second-level heading.
func codeBlock(doc, heading, lang string) (string, bool) {
	_, rest, ok := strings.Cut(doc, heading)
	if !ok {
		return "", false
	}
	if next := strings.Index(rest, "\n## "); next >= 0 {
		rest = rest[:next]
	}
	_, rest, ok = strings.Cut(rest, "```"+lang+"\n")
	if !ok {
		return "", false
	}
	block, _, ok := strings.Cut(rest, "```")
	return block, ok
}

// TestWritingServicesRoute: the page's YAML is a gateway configuration
// that routes GET /v1/hello/{id}/hello to HELLO.
func TestWritingServicesRoute(t *testing.T) {
	block, ok := codeBlock(readText(t, "docs/writing-services.md"), "\n## Behind the gateway\n", "yaml")
	if !ok {
		t.Fatal("docs/writing-services.md has no yaml block under \"## Behind the gateway\"")
	}
	cfg, err := config.Parse("writing-services.yaml", []byte(block), func(string) string { return "dev-key" })
	if err != nil {
		t.Fatal(err)
	}
	res := cfg.Versions["v1"].Resources["hello"]
	if res == nil {
		t.Fatal("no resource hello in v1")
	}
	for _, r := range res.Routes {
		if r.Form == config.FormItemAction && r.Segment == "hello" && r.Method == "GET" && r.Action == "HELLO" {
			return
		}
	}
	t.Fatalf("no route GET /v1/hello/{id}/hello → HELLO in %+v", res.Routes)
}
