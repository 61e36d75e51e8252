package gateway_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/promtest"
)

// fetchRaw fetches a path without following redirects.
// rawAnswer is what fetchRaw keeps of a response (its body is read and closed).
type rawAnswer struct {
	StatusCode int
	Header     http.Header
}

func fetchRaw(t *testing.T, base, method, path string) (rawAnswer, string) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rawAnswer{StatusCode: resp.StatusCode, Header: resp.Header}, string(b)
}

func TestDemoPage(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	reg := gateway.NewRegistry()
	g, err := gateway.New(parseConfig(t, testYAML, svcs), gateway.WithDemo(), gateway.WithMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	ts := serveHTTP(t, g)
	client, err := os.ReadFile("client/js/streamgate.js")
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, method, path string
		status             int
		contentType        string // prefix
		contains           string
	}{
		{"the page", "GET", "/demo/", 200, "text/html", `<script type="module" src="demo.js">`},
		{"the page's script imports the client", "GET", "/demo/demo.js", 200, "text/javascript", `from './streamgate.js'`},
		{"the client", "GET", "/demo/streamgate.js", 200, "text/javascript", string(client)},
		{"the style", "GET", "/demo/demo.css", 200, "text/css", "body"},
		{"HEAD", "HEAD", "/demo/", 200, "text/html", ""},
		{"without the slash", "GET", "/demo", 301, "", ""},
		{"index.html goes to the directory", "GET", "/demo/index.html", 301, "", ""},
		{"a missing file", "GET", "/demo/nope.js", 404, "", ""},
		{"the client's other files are not served", "GET", "/demo/../client/js/package.json", 404, "", ""},
		{"no writes", "POST", "/demo/", 405, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := fetchRaw(t, ts.URL, c.method, c.path)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
				t.Errorf("Content-Type %q, want %q…", ct, c.contentType)
			}
			if !strings.Contains(body, c.contains) {
				t.Errorf("the body does not contain %q", c.contains)
			}
			if c.status == 200 {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
					t.Errorf("Content-Security-Policy %q", csp)
				}
			}
		})
	}
	if resp, _ := fetchRaw(t, ts.URL, "GET", "/demo"); resp.Header.Get("Location") != "/demo/" {
		t.Errorf("/demo redirects to %q", resp.Header.Get("Location"))
	}
	// The page's requests count under one route label, never their paths.
	m := promtest.Gather(t, reg)
	if n := m.Value("streamgate_gateway_requests_total", "route", "demo", "method", "GET", "status", "200"); n != 4 {
		t.Errorf("%v GETs of the page counted under route demo, want 4", n)
	}
	if n := m.Value("streamgate_gateway_requests_total", "route", "demo", "status", "404"); n != 2 {
		t.Errorf("%v 404s of the page counted under route demo, want 2", n)
	}
}

func TestDemoPageIsOffByDefault(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	r := do(t, ts, "GET", "/demo/", "")
	if r.Status != http.StatusNotFound || !strings.Contains(r.Env.Error.Message, "demo") {
		t.Fatalf("GET /demo/ without WithDemo: %d %s, want the REST edge's 404 for version demo", r.Status, r.Raw)
	}
}
