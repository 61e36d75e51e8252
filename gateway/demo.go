package gateway

import (
	_ "embed"
	"net/http"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/demo"
)

// jsClient is the JavaScript client, which the demo page imports.
//
//go:embed client/js/streamgate.js
var jsClient []byte

// WithDemo serves the live demo page at /demo/ (package demo). A version
// named "demo" in the configuration takes the path instead. Default: off.
func WithDemo() Option { return func(o *options) { o.demo = true } }

// demoPage serves the demo page in front of the routes
// (rest.Options.Before), observed under the label demo.
func (g *Gateway) demoPage(cfg *config.Config, w http.ResponseWriter, r *http.Request) (string, bool) {
	if g.demo == nil || !demo.Serves(cfg, r) {
		return "", false
	}
	g.demo.ServeHTTP(w, r)
	return demo.Route, true
}
