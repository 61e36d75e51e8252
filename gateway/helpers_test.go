package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Credentials the test configuration accepts.
const (
	adminKey   = "admin-key"
	aliceKey   = "alice-key"
	jwtSecret  = "jwt-secret-for-tests-only-0123456789"
	serviceKey = "gateway-to-services"
)

var testEnv = map[string]string{
	"ADMIN_KEY":   adminKey,
	"ALICE_KEY":   aliceKey,
	"JWT_SECRET":  jwtSecret,
	"SERVICE_KEY": serviceKey,
}

// fakeService is a real socket service whose actions the test defines.
type fakeService struct {
	Addr string
	mu   sync.Mutex // guards calls
	// calls counts runs per action.
	calls map[string]int
}

func (f *fakeService) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

// handlerFunc is a test action: it gets the request and returns a result.
type handlerFunc func(ctx context.Context, r *socket.Request) (any, error)

// startService serves actions on loopback until the test ends.
func startService(t testing.TB, name string, actions map[string]handlerFunc, reads ...string) *fakeService {
	t.Helper()
	srv, f := newService(t, name, actions, reads...)
	f.Addr = sockettest.Serve(t, srv)
	return f
}

// newService is a server with the test's actions, not yet serving.
func newService(t testing.TB, name string, actions map[string]handlerFunc, reads ...string) (*socket.Server, *fakeService) {
	t.Helper()
	keys, err := keyring.New(keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := socket.NewServer(socket.Config{Name: name}, socket.WithKeys(keys), socket.WithDrainTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeService{calls: map[string]int{}}
	isRead := map[string]bool{}
	for _, r := range reads {
		isRead[r] = true
	}
	for action, h := range actions {
		var opts []socket.ActionOption
		if isRead[action] {
			opts = append(opts, socket.Read())
		}
		err := srv.Handle(action, socket.HandlerFunc(func(ctx context.Context, r *socket.Request) (json.RawMessage, error) {
			f.mu.Lock()
			f.calls[action]++
			f.mu.Unlock()
			res, err := h(ctx, r)
			if err != nil {
				return nil, err
			}
			return json.Marshal(res)
		}), append(opts, socket.Doc("test action "+action))...)
		if err != nil {
			t.Fatal(err)
		}
	}
	return srv, f
}

// startGateway loads YAML (with ${ADDR_name} replaced by service
// addresses) and serves it over httptest.
func startGateway(t testing.TB, yaml string, services map[string]*fakeService) (*gateway.Gateway, *httptest.Server) {
	t.Helper()
	cfg := parseConfig(t, yaml, services)
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g, serveHTTP(t, g)
}

// serveHTTP serves a gateway over httptest and closes both at cleanup.
func serveHTTP(t testing.TB, g *gateway.Gateway) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(g)
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Close(ctx)
	})
	return ts
}

func parseConfig(t testing.TB, yaml string, services map[string]*fakeService) *config.Config {
	t.Helper()
	for name, s := range services {
		yaml = strings.ReplaceAll(yaml, "${ADDR_"+name+"}", s.Addr)
	}
	cfg, err := config.Parse("test.yaml", []byte(yaml), func(k string) string { return testEnv[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// response is a decoded REST answer.
type response struct {
	Status int
	Header http.Header
	Env    struct {
		OK     bool            `json:"ok"`
		Result json.RawMessage `json:"result"`
		Error  *status.Error   `json:"error"`
	}
	Raw string
}

// do sends a request; headers are name/value pairs.
func do(t testing.TB, ts *httptest.Server, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := ts.Client()
	if client == nil { // a server Run started, named by URL only
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	if err := json.Unmarshal(b, &out.Env); err != nil {
		t.Fatalf("%s %s: body is not an envelope (%v): %s", method, path, err, b)
	}
	if out.Env.OK != (out.Env.Error == nil) {
		t.Fatalf("%s %s: inconsistent envelope %s", method, path, b)
	}
	return out
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// token signs an HS256 JWT for the test issuer.
func token(t testing.TB, sub string, roles []string, ttl time.Duration) string {
	return tokenFrom(t, "test", sub, roles, ttl)
}

// tokenFrom signs an HS256 JWT for an issuer with the test secret.
func tokenFrom(t testing.TB, issuer, sub string, roles []string, ttl time.Duration) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": issuer, "aud": "streamgate", "sub": sub, "roles": roles, "exp": time.Now().Add(ttl).Unix(), "iat": time.Now().Add(-time.Minute).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(jwtSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func resultMap(t testing.TB, r response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Env.Result, &m); err != nil {
		t.Fatalf("result %s: %v", r.Env.Result, err)
	}
	return m
}

func fail(code status.Code, format string, args ...any) error {
	return socket.Errorf(code, format, args...)
}

var _ = fmt.Sprint
