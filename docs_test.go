package streamgate_test

import (
	"os"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// TestWritingServicesExamples keeps docs/writing-services.md's programs
// equal to the ones the tests run: the Go example's body (also README's),
// services/node/examples/hello.js and services/python/examples/hello.py.
func TestWritingServicesExamples(t *testing.T) {
	doc := readText(t, "docs/writing-services.md")
	readme := readText(t, "README.md")
	goReadme, ok := codeBlock(readme, "\n## Writing a service\n", "go")
	if !ok {
		t.Fatal(`README.md has no go block under "## Writing a service"`)
	}
	for _, c := range []struct{ heading, lang, want string }{
		{"\n## Go\n", "go", goReadme},
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
