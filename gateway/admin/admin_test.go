package admin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/streamgate/streamgate/gateway/admin"
	"github.com/streamgate/streamgate/gateway/invoke"
)

func TestReadiness(t *testing.T) {
	cases := []struct {
		name     string
		health   invoke.Health
		draining bool
		want     string
		status   int
	}{
		{"all ready", invoke.Health{Cache: "ok", IdempotencyStore: "ok"}, false, "ready", 200},
		{"Redis down only degrades", invoke.Health{Cache: "unavailable", IdempotencyStore: "unavailable"}, false, "degraded", 200},
		{"events' NATS down only degrades", invoke.Health{Cache: "off", IdempotencyStore: "memory", Events: "unavailable"}, false, "degraded", 200},
		{"a service without a ready stream", invoke.Health{UnreadyServices: []string{"users"}, Cache: "off", IdempotencyStore: "memory"}, false, "unready", 503},
		{"draining", invoke.Health{Cache: "off", IdempotencyStore: "memory"}, true, "unready", 503},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := admin.Readiness(c.health, c.draining).Status; got != c.want {
				t.Errorf("Readiness: %q, want %q", got, c.want)
			}
			h := admin.Handler(admin.Options{
				Metrics:  http.NotFoundHandler(),
				Health:   func(context.Context) invoke.Health { return c.health },
				Draining: func() bool { return c.draining },
			})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			if rec.Code != c.status {
				t.Fatalf("/readyz: %d, want %d: %s", rec.Code, c.status, rec.Body)
			}
			var env struct {
				OK     bool          `json:"ok"`
				Result *admin.Report `json:"result"`
				Error  *struct {
					Code    string         `json:"code"`
					Details map[string]any `json:"details"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatal(err)
			}
			switch {
			case c.status == 200 && (env.Result == nil || env.Result.Status != c.want):
				t.Errorf("/readyz result %+v, want status %q", env.Result, c.want)
			case c.status == 503 && (env.Error == nil || env.Error.Code != "UNAVAILABLE" || env.Error.Details["draining"] != c.draining):
				t.Errorf("/readyz error %+v", env.Error)
			}
		})
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		h := admin.Handler(admin.Options{Metrics: http.NotFoundHandler(), Pprof: on,
			Health: func(context.Context) invoke.Health { return invoke.Health{} }, Draining: func() bool { return false }})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/cmdline", nil))
		if got := rec.Code == http.StatusOK; got != on {
			t.Errorf("pprof %v: /debug/pprof/cmdline answered %d", on, rec.Code)
		}
	}
}
