package invoke

import (
	"net/http"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// FuzzResolve feeds arbitrary paths and methods to the path parser and the
// route resolver: they never panic, and every refusal has a code.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"/v1/users", "/v1/users/1", "/v1/users/1/pay", "/v1/users/search", "/v1/users/a%2Fb", "/v1/users/%zz",
		"/v1/../x", "//", "/v1//", "/v9/x/y/z", "/v1/users/1/pay/x", "/%2e%2e/users"} {
		f.Add(s, http.MethodGet)
		f.Add(s, http.MethodPost)
	}
	cfg := &config.Config{Versions: map[string]*config.Version{"v1": {Name: "v1", Resources: map[string]*config.Resource{
		"users": {Name: "users", Service: "users", Routes: []*config.Route{
			{Form: config.FormItem, Method: http.MethodGet, Action: "GET_USER"},
			{Form: config.FormCollection, Method: http.MethodPost, Action: "CREATE_USER"},
			{Form: config.FormItemAction, Segment: "pay", Method: http.MethodPost, Action: "PAY"},
			{Form: config.FormCollectionAction, Segment: "search", Method: http.MethodGet, Action: "SEARCH"},
		}},
	}}}}
	f.Fuzz(func(t *testing.T, path, method string) {
		p, _, err := ParsePath(method, path)
		if err != nil {
			if !err.Code.Valid() || err.Message == "" {
				t.Fatalf("ParsePath(%q, %q) = %#v", method, path, err)
			}
			return
		}
		rr, rerr := resolve(cfg, p, method)
		switch {
		case rerr != nil && (rerr.err == nil || !rerr.err.Code.Valid()):
			t.Fatalf("resolve(%q, %q): error without a code", path, method)
		case rerr == nil && (rr.route == nil || rr.route.Method != method):
			t.Fatalf("resolve(%q, %q) = %+v", path, method, rr)
		}
	})
}
