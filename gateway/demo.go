package gateway

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/streamgate/streamgate/gateway/config"
)

// demoFiles are the live demo page (demo/) and the JavaScript client it
// imports (client/js/streamgate.js), built into the binary: the page
// needs no build step and no files beside the gateway.
//
//go:embed demo/index.html demo/demo.js demo/demo.css client/js/streamgate.js
var demoFiles embed.FS

// demoPrefix is where WithDemo serves the page.
const demoPrefix = "/demo/"

// routeDemo labels the demo page's requests in the metrics.
const routeDemo = "demo"

// WithDemo serves the live demo page at /demo/: sign in with a token,
// create an order, pay it and watch its status and the item's stock
// change, over the WebSocket endpoint and the JavaScript client. A
// version named "demo" in the configuration takes the path instead.
// Default: off.
func WithDemo() Option { return func(o *options) { o.demo = true } }

// demoPage serves the demo page in front of the routes
// (rest.Options.Before), observed under the label demo.
func (g *Gateway) demoPage(cfg *config.Config, w http.ResponseWriter, r *http.Request) (string, bool) {
	if !g.opts.demo || !isDemo(cfg, r) {
		return "", false
	}
	serveDemo(w, r)
	return routeDemo, true
}

// isDemo reports whether the demo page serves r.
func isDemo(cfg *config.Config, r *http.Request) bool {
	if r.URL.Path != strings.TrimSuffix(demoPrefix, "/") && !strings.HasPrefix(r.URL.Path, demoPrefix) {
		return false
	}
	_, shadowed := cfg.Versions[strings.Trim(demoPrefix, "/")]
	return !shadowed
}

// serveDemo serves the page's files: GET and HEAD only, no listings, and
// a policy that lets the page load only its own files and talk only to
// this origin.
func serveDemo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.URL.Path, demoPrefix) {
		http.Redirect(w, r, demoPrefix, http.StatusMovedPermanently)
		return
	}
	name := path.Join("demo", strings.TrimPrefix(r.URL.Path, demoPrefix))
	switch {
	case name == "demo":
		name = "demo/index.html"
	case name == "demo/streamgate.js":
		name = "client/js/streamgate.js"
	case !strings.HasPrefix(name, "demo/"):
		name = "" // a path with .. segments
	}
	if _, err := fs.Stat(demoFiles, name); name == "" || err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, demoFiles, name)
}
