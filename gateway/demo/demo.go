// Package demo is the live demo page the gateway serves at /demo/ (with
// gateway.WithDemo): sign in with a token, create an order, pay it and
// watch its status and the item's stock change, over the WebSocket
// endpoint and the JavaScript client. The page is built into the binary:
// it needs no build step and no files beside the gateway.
package demo

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
)

//go:embed index.html demo.js demo.css
var files embed.FS

// Prefix is where the page is served.
const Prefix = "/demo/"

// Route labels the page's requests in the metrics and the access log.
const Route = "demo"

// Serves reports whether the page serves r under cfg: a version named
// "demo" in the configuration takes the path instead.
func Serves(cfg *config.Config, r *http.Request) bool {
	if r.URL.Path != strings.TrimSuffix(Prefix, "/") && !strings.HasPrefix(r.URL.Path, Prefix) {
		return false
	}
	_, shadowed := cfg.Versions[strings.Trim(Prefix, "/")]
	return !shadowed
}

// Page serves the page's files, and the JavaScript client (client, the
// contents of gateway/client/js/streamgate.js) as streamgate.js beside
// them.
type Page struct {
	client []byte
}

// New returns the page that imports client.
func New(client []byte) *Page { return &Page{client: client} }

// ServeHTTP serves the page's files: GET and HEAD only, no listings, and
// a policy that lets the page load only its own files and talk only to
// this origin.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !strings.HasPrefix(r.URL.Path, Prefix) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	name := path.Join(".", strings.TrimPrefix(r.URL.Path, Prefix))
	if name == "." {
		name = "index.html"
	}
	isClient := name == "streamgate.js"
	if _, err := fs.Stat(files, name); !isClient && (strings.HasPrefix(name, "..") || err != nil) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	if isClient {
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(p.client))
		return
	}
	http.ServeFileFS(w, r, files, name)
}
