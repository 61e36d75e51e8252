package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

func TestBadInputs(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	alice := bearer(aliceKey)
	deep := strings.Repeat("[", 20) + strings.Repeat("]", 20)
	cases := []struct {
		name, method, path, body, contentType string
		status                                int
		code                                  status.Code
		contains                              string
	}{
		{"invalid JSON names the offset", "POST", "/v1/users", `{"name": "x",}`, "application/json", 400, socket.CodeInvalidArgument, "offset 14"},
		{"truncated JSON", "POST", "/v1/users", `{"name":`, "application/json", 400, socket.CodeInvalidArgument, "offset"},
		{"wrong content type", "POST", "/v1/users", `name=x`, "application/x-www-form-urlencoded", 415, socket.CodeInvalidArgument, "application/json"},
		{"huge body", "POST", "/v1/users", `{"a":"` + strings.Repeat("x", 5000) + `"}`, "application/json", 413, socket.CodeInvalidArgument, "larger than 4096"},
		{"deep nesting", "POST", "/v1/users", deep, "application/json", 400, socket.CodeInvalidArgument, "deeper than 8"},
		{"encoded slash in id", "GET", "/v1/users/a%2Fb", "", "", 400, socket.CodeInvalidArgument, "slash"},
		{"encoded slash turning into an action", "GET", "/v1/users/1%2Fcheck_purchasable", "", "", 400, socket.CodeInvalidArgument, "slash"},
		{"dot segment", "GET", "/v1/users/../payments/1", "", "", 400, socket.CodeInvalidArgument, "dot segments"},
		{"encoded dot segment", "GET", "/v1/users/%2e%2e", "", "", 400, socket.CodeInvalidArgument, "dot segments"},
		{"empty segment", "GET", "/v1//1", "", "", 404, socket.CodeNotFound, ""},
		{"unknown version", "GET", "/nope/users", "", "", 404, socket.CodeNotFound, "nope"},
		{"bad page_size", "GET", "/v1/users?page_size=-1", "", "", 400, socket.CodeInvalidArgument, "page_size"},
		{"bad timeout header", "GET", "/v1/users/1", "", "", 400, socket.CodeInvalidArgument, "Timeout"},
		{"unknown method", "TRACE", "/v1/users", "", "", 405, socket.CodeNotSupported, ""},
		{"unknown method on an item", "OPTIONS", "/v1/users/1", "", "", 405, socket.CodeNotSupported, "OPTIONS"},
		{"unknown method on a longer path", "TRACE", "/v1/users/1/pay/x", "", "", 404, socket.CodeNotFound, ""},
		{"longer than any route", "GET", "/v1/users/1/pay/x", "", "", 404, socket.CodeNotFound, ""},
		{"dot segment in a longer path", "GET", "/v1/users/1/pay/x/..", "", "", 400, socket.CodeInvalidArgument, "dot segments"},
		{"GatewayService path with another method is a REST path", "GET", "/gateway/v1/invoke", "", "", 404, socket.CodeNotFound, `"gateway"`},
		{"GatewayService path longer than REST paths with another method", "POST", "/gateway/v1/versions/v1/routes", "", "", 405, socket.CodeNotSupported, "POST"},
		{"dot segment in a GatewayService path", "GET", "/gateway/v1/versions/../routes", "", "", 400, socket.CodeInvalidArgument, "dot segments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
			if tc.body == "" {
				req.Body = http.NoBody
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			req.Header.Set("Authorization", alice[1])
			if tc.name == "bad timeout header" {
				req.Header.Set("Timeout", "soon")
			}
			resp, err := ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"`+string(tc.code)+`"`) || !strings.Contains(string(b), tc.contains) {
				t.Fatalf("%d %s; want %d %s containing %q", resp.StatusCode, b, tc.status, tc.code, tc.contains)
			}
			if resp.StatusCode >= 500 {
				t.Fatal("bad input gave a 5xx")
			}
		})
	}
	t.Run("huge chunked body is cut at the limit", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			_, _ = fmt.Fprint(pw, `{"a":"`)
			for range 100 {
				if _, err := fmt.Fprint(pw, strings.Repeat("x", 1000)); err != nil {
					return
				}
			}
			_ = pw.Close()
		}()
		req, _ := http.NewRequest("POST", ts.URL+"/v1/users", pr)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", alice[1])
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_ = pr.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	alice := bearer(aliceKey)
	cases := []struct {
		name    string
		headers []string
		max     time.Duration
	}{
		// The route's timeout is 3s: a shorter header must end the
		// request well before it (with room for a busy machine).
		{"route timeout", nil, 15 * time.Second},
		{"shorter Timeout header", []string{"Timeout", "20ms"}, 1500 * time.Millisecond},
		{"shorter Grpc-Timeout", []string{"Grpc-Timeout", "20m"}, 1500 * time.Millisecond},
		{"longer header is capped by the route", []string{"Timeout", "30s"}, 15 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := do(t, ts, "GET", "/v1/users/1/slow", "", append(alice, tc.headers...)...)
			took := time.Since(start)
			if r.Status != 504 || r.Env.Error.Code != socket.CodeDeadlineExceeded {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
			if took > tc.max {
				t.Fatalf("took %v, want under %v", took, tc.max)
			}
		})
	}
}

func TestRequestIDsAndCORS(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	_, ts := startGateway(t, testYAML, svcs)
	r := do(t, ts, "GET", "/v1/users/whoami", "", "X-Request-Id", "abc-123")
	if r.Header.Get("X-Request-Id") != "abc-123" || !strings.Contains(string(r.Env.Result), `"RequestID":"abc-123"`) {
		t.Fatalf("request id not echoed and forwarded: %v %s", r.Header.Get("X-Request-Id"), r.Raw)
	}
	a, b := do(t, ts, "GET", "/v1/users/whoami", ""), do(t, ts, "GET", "/v1/users/whoami", "")
	if a.Header.Get("X-Request-Id") == "" || a.Header.Get("X-Request-Id") == b.Header.Get("X-Request-Id") {
		t.Fatal("generated request ids are missing or repeat")
	}
	req, _ := http.NewRequest("OPTIONS", ts.URL+"/v1/users", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// Browsers may read the headers a retry needs.
	allowed := do(t, ts, "GET", "/v1/users/whoami", "", "Origin", "https://app.example")
	for _, h := range []string{"X-Request-Id", "Location", "ETag", "X-Cache", "Retry-After", "Idempotent-Replayed"} {
		if !strings.Contains(allowed.Header.Get("Access-Control-Expose-Headers"), h) {
			t.Errorf("CORS does not expose %s: %q", h, allowed.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	other := do(t, ts, "GET", "/v1/users/whoami", "", "Origin", "https://evil.example")
	if other.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("CORS allowed an origin not in the list")
	}
}

func TestReloadWhileRequestsAreInFlight(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	g, ts := startGateway(t, testYAML, svcs)
	alice := bearer(aliceKey)
	// v3 does not exist yet.
	if r := do(t, ts, "GET", "/v3/users/1", "", alice...); r.Status != 404 {
		t.Fatalf("before reload: %d", r.Status)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := do(t, ts, "POST", "/v1/orders/7/pay", `{"card":"4242"}`, alice...)
				if r.Status != 200 {
					errs <- r.Raw
				}
			}
		}()
	}
	withV3 := testYAML + "\n  v3:\n    extends: v2\n"
	for range 20 {
		if err := g.Apply(parseConfig(t, withV3, svcs)); err != nil {
			t.Fatal(err)
		}
		if err := g.Apply(parseConfig(t, testYAML, svcs)); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Apply(parseConfig(t, withV3, svcs)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("request during reload failed: %s", e)
	}
	if r := do(t, ts, "GET", "/v3/users/1", "", alice...); r.Status != 200 {
		t.Fatalf("after reload: %d %s", r.Status, r.Raw)
	}
}

// API keys verified once are remembered per configuration: a key the
// reloaded configuration no longer has is refused at once, over either
// header, and a wrong key is never taken for a remembered one.
func TestRemovedKeyRefusedAfterReload(t *testing.T) {
	t.Parallel()
	_, svcs := newSystem(t)
	g, ts := startGateway(t, testYAML, svcs)
	for range 3 { // the second and third are answered from the remembered keys
		if r := do(t, ts, "GET", "/v1/users/1", "", bearer(aliceKey)...); r.Status != 200 {
			t.Fatalf("alice before the reload: %d %s", r.Status, r.Raw)
		}
	}
	for _, wrong := range []string{aliceKey + "x", aliceKey[:len(aliceKey)-1], strings.ToUpper(aliceKey)} {
		if r := do(t, ts, "GET", "/v1/users/1", "", "X-API-Key", wrong); r.Status != 401 {
			t.Fatalf("a wrong key %q: %d %s", wrong, r.Status, r.Raw)
		}
	}
	withoutAlice := strings.Replace(testYAML, "    - {name: alice, secret_env: ALICE_KEY, subject: alice}\n", "", 1)
	if withoutAlice == testYAML {
		t.Fatal("the test's configuration no longer lists alice's key")
	}
	if err := g.Apply(parseConfig(t, withoutAlice, svcs)); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]string{bearer(aliceKey), {"X-API-Key", aliceKey}} {
		if r := do(t, ts, "GET", "/v1/users/1", "", h...); r.Status != 401 {
			t.Fatalf("alice's removed key (%s): %d %s", h[0], r.Status, r.Raw)
		}
	}
	if r := do(t, ts, "GET", "/v1/users/1", "", bearer(adminKey)...); r.Status != 200 {
		t.Fatalf("the admin after the reload: %d %s", r.Status, r.Raw)
	}
}
