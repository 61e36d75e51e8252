package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/promtest"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// socketYAML routes the socket tests' service: reads, a write that needs
// an Idempotency-Key, an anonymous route, and actions the tests hold.
const socketYAML = `
http:
  max_json_depth: 8
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
    - {name: alice, secret_env: ALICE_KEY, subject: alice}
  jwt:
    - {issuer: test, audience: streamgate, hs256_secret_env: JWT_SECRET}
services:
  users: {target: "${ADDR_users}", key_env: SERVICE_KEY, timeout: 5s}
versions:
  v1:
    resources:
      users:
        service: users
        actions:
          - {name: whoami, method: GET, on: collection, access: anonymous}
          - {name: hold, method: GET}
          - {name: big, method: GET, cache_ttl: 1m, visibility: public}
      charges:
        service: users
        crud: [create]
        idempotency: required
`

// socketSystem is a real service behind a gateway served over loopback.
type socketSystem struct {
	g       *gateway.Gateway
	ts      *httptest.Server
	svc     *fakeService
	reg     *prometheus.Registry
	held    chan string   // HOLD started, with its id
	release chan struct{} // closed: HOLD answers
	ended   chan error    // HOLD's context ended (the cancel reached it)
	charges atomic.Int64
}

// startSocketSystem starts the service and a gateway with opts.
func startSocketSystem(t *testing.T, opts ...gateway.Option) *socketSystem {
	t.Helper()
	s := &socketSystem{held: make(chan string, 16), release: make(chan struct{}), ended: make(chan error, 16), reg: prometheus.NewRegistry()}
	big := strings.Repeat("x", 64<<10)
	s.svc = startService(t, "users", map[string]handlerFunc{
		"GET_USER": func(_ context.Context, r *socket.Request) (any, error) {
			if r.ResourceID == "404" {
				return nil, fail(socket.CodeNotFound, "no user %s", r.ResourceID)
			}
			return map[string]any{"id": r.ResourceID, "name": "Oska"}, nil
		},
		"UPDATE_USER": func(_ context.Context, r *socket.Request) (any, error) {
			return map[string]any{"id": r.ResourceID, "body": r.Body}, nil
		},
		"WHOAMI": func(ctx context.Context, _ *socket.Request) (any, error) {
			return map[string]any{"subject": socket.MetaFrom(ctx).Principal.Subject}, nil
		},
		"HOLD": func(ctx context.Context, r *socket.Request) (any, error) {
			s.held <- r.ResourceID
			select {
			case <-s.release:
				return map[string]any{"id": r.ResourceID}, nil
			case <-ctx.Done():
				s.ended <- ctx.Err()
				return nil, ctx.Err()
			}
		},
		"BIG": func(context.Context, *socket.Request) (any, error) { return map[string]any{"pad": big}, nil },
		"CREATE_CHARGE": func(_ context.Context, r *socket.Request) (any, error) {
			n := s.charges.Add(1)
			return map[string]any{"id": fmt.Sprintf("ch_%d", n), "body": r.Body}, nil
		},
	}, "GET_USER", "WHOAMI", "BIG")
	cfg := parseConfig(t, socketYAML, map[string]*fakeService{"users": s.svc})
	g, err := gateway.New(cfg, append([]gateway.Option{gateway.WithMetrics(s.reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	s.g, s.ts = g, serveHTTP(t, g)
	return s
}

// socketURL is the WebSocket endpoint of a version.
func (s *socketSystem) socketURL(version string) string {
	return "ws" + strings.TrimPrefix(s.ts.URL, "http") + "/" + version + "/socket"
}

// metric reads one of the gateway's series (0 when absent).
func (s *socketSystem) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	return promtest.Gather(t, s.reg).Value(name, labels...)
}

// waitMetric waits (bounded) until a series satisfies ok.
func (s *socketSystem) waitMetric(t *testing.T, name string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !ok(s.metric(t, name)) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 10s", name, s.metric(t, name))
		}
		<-tick.C
	}
}

// wsClient is a test's WebSocket client.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

// dialSocket connects to the endpoint with the subprotocol and headers
// (name/value pairs); the connection is closed at cleanup.
func dialSocket(t *testing.T, url string, headers ...string) *wsClient {
	t.Helper()
	c, err := dialSocketErr(url, headers...)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func dialSocketErr(url string, headers ...string) (*websocket.Conn, error) {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"streamgate.v1"}, HTTPHeader: h})
	if err == nil {
		c.SetReadLimit(1 << 20)
	}
	return c, err
}

func (w *wsClient) send(frame string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		w.t.Fatalf("send %s: %v", frame, err)
	}
}

// frame is any frame the gateway sends.
type frame struct {
	Type     string          `json:"type"`
	ID       json.RawMessage `json:"id"`
	Status   int             `json:"status"`
	OK       bool            `json:"ok"`
	Result   json.RawMessage `json:"result"`
	Error    *status.Error   `json:"error"`
	Replayed bool            `json:"replayed"`
	Location string          `json:"location"`
	Topic    string          `json:"topic"`
	Seq      uint64          `json:"seq"`
	Data     json.RawMessage `json:"data"`
	raw      string
}

// read reads the next frame (bounded).
func (w *wsClient) read() frame {
	w.t.Helper()
	f, err := w.readErr(10 * time.Second)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return f
}

func (w *wsClient) readErr(timeout time.Duration) (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, fmt.Errorf("frame %s: %w", b, err)
	}
	if f.Type == "response" && f.OK != (f.Error == nil) {
		return frame{}, fmt.Errorf("inconsistent response frame %s", b)
	}
	f.raw = string(b)
	return f, nil
}

// closeCode reads until the socket closes and returns the close code.
func (w *wsClient) closeCode() websocket.StatusCode {
	w.t.Helper()
	for {
		_, err := w.readErr(15 * time.Second)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				w.t.Fatal("the socket did not close")
			}
			return websocket.CloseStatus(err)
		}
	}
}

// request sends a request frame and reads its answer (no other frame may
// come in between).
func (w *wsClient) request(frameJSON string) frame {
	w.t.Helper()
	w.send(frameJSON)
	f := w.read()
	if f.Type != "response" {
		w.t.Fatalf("got %s, want a response", f.raw)
	}
	return f
}

func subjectOf(t *testing.T, f frame) string {
	t.Helper()
	var r struct {
		Subject string `json:"subject"`
	}
	if err := json.Unmarshal(f.Result, &r); err != nil {
		t.Fatalf("result of %s: %v", f.raw, err)
	}
	return r.Subject
}

func TestSocketAuthByHeader(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	for _, h := range [][]string{bearer(aliceKey), {"X-API-Key", aliceKey}} {
		c := dialSocket(t, s.socketURL("v1"), h...)
		f := c.request(`{"type":"request","id":"7","method":"GET","path":"/users/1"}`)
		if string(f.ID) != `"7"` || f.Status != 200 || !f.OK || !strings.Contains(string(f.Result), `"name":"Oska"`) {
			t.Fatalf("GET /users/1: %s", f.raw)
		}
		if f := c.request(`{"type":"request","id":8,"method":"GET","path":"/users/whoami"}`); string(f.ID) != "8" || subjectOf(t, f) != "alice" {
			t.Fatalf("whoami: %s", f.raw)
		}
	}
}

func TestSocketAuthByFirstFrame(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"))
	c.send(`{"type":"auth","token":"` + token(t, "bob", nil, time.Hour) + `"}`)
	if f := c.read(); f.raw != `{"type":"auth","ok":true}` {
		t.Fatalf("auth answer: %s", f.raw)
	}
	if f := c.request(`{"type":"request","id":"1","method":"GET","path":"/users/whoami"}`); subjectOf(t, f) != "bob" {
		t.Fatalf("whoami: %s", f.raw)
	}
	// An API key works in the frame too.
	k := dialSocket(t, s.socketURL("v1"))
	k.send(`{"type":"auth","token":"` + aliceKey + `"}`)
	k.read()
	if f := k.request(`{"type":"request","id":"1","method":"GET","path":"/users/whoami"}`); subjectOf(t, f) != "alice" {
		t.Fatalf("whoami: %s", f.raw)
	}
}

func TestSocketRefusedCredentialsClose4401(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	cases := []struct {
		name    string
		headers []string
		first   string
		code    websocket.StatusCode
	}{
		{"bad header key", bearer("not-a-key"), "", 4401},
		{"expired token in header", bearer(token(t, "bob", nil, -time.Hour)), "", 4401},
		{"bad auth frame", nil, `{"type":"auth","token":"not-a-key"}`, 4401},
		{"empty auth frame", nil, `{"type":"auth","token":""}`, 4401},
		{"auth frame not first", nil, `{"type":"request","id":"1","method":"GET","path":"/users/whoami"}`, 4400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSocket(t, s.socketURL("v1"), tc.headers...)
			if tc.first != "" {
				c.send(tc.first)
			}
			if tc.code == 4400 {
				c.read() // the request's answer
				c.send(`{"type":"auth","token":"` + aliceKey + `"}`)
			}
			if got := c.closeCode(); got != tc.code {
				t.Fatalf("close code %d, want %d", got, tc.code)
			}
		})
	}
}

func TestSocketAnonymous(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"))
	if f := c.request(`{"type":"request","id":"1","method":"GET","path":"/users/1"}`); f.Status != 401 || f.Error.Code != socket.CodeUnauthenticated {
		t.Fatalf("anonymous GET /users/1: %s", f.raw)
	}
	if f := c.request(`{"type":"request","id":"2","method":"GET","path":"/users/whoami"}`); f.Status != 200 || subjectOf(t, f) != socket.AnonymousSubject {
		t.Fatalf("anonymous whoami: %s", f.raw)
	}
	// The same answers as REST.
	if r := do(t, s.ts, "GET", "/v1/users/1", ""); r.Status != 401 {
		t.Fatalf("REST: %d", r.Status)
	}
}

func TestSocketActionForm(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	f := c.request(`{"type":"request","id":"8","action":"UPDATE_USER","resource_id":"1","body":{"name":"Oska"}}`)
	if f.Status != 200 || !strings.Contains(string(f.Result), `"body":{"name":"Oska"}`) || !strings.Contains(string(f.Result), `"id":"1"`) {
		t.Fatalf("UPDATE_USER: %s", f.raw)
	}
	if f := c.request(`{"type":"request","id":"9","action":"GET_USER","resource_id":1}`); f.Status != 200 || !strings.Contains(string(f.Result), `"id":"1"`) {
		t.Fatalf("GET_USER 1: %s", f.raw)
	}
	cases := []struct{ frame, code string }{
		{`{"type":"request","id":"a","action":"NO_SUCH","resource_id":"1"}`, "NOT_FOUND"},
		{`{"type":"request","id":"b","action":"GET_USER"}`, "INVALID_ARGUMENT"},
		{`{"type":"request","id":"c","action":"GET_USER","resource_id":"404"}`, "NOT_FOUND"},
		{`{"type":"request","id":"d","action":"CREATE_CHARGE"}`, "INVALID_ARGUMENT"}, // idempotency required, as REST
	}
	for _, tc := range cases {
		if f := c.request(tc.frame); f.OK || string(f.Error.Code) != tc.code {
			t.Errorf("%s: %s, want %s", tc.frame, f.raw, tc.code)
		}
	}
}

func TestSocketInvalidFrames(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	answered := []string{
		`{"type":"request","id":"1"}`,
		`{"type":"request","id":"2","method":"GET","path":"users/1"}`,
		`{"type":"request","id":"3","method":"GET","path":"/users/1","action":"GET_USER"}`,
		`{"type":"request","id":"4","method":"GET","path":"/users/1","timeout_ms":"soon"}`,
		`{"type":"subscribe","id":"5"}`,
		`{"type":"launch","id":"6"}`,
		`{"type":"request","id":"7","method":"GET","path":"/users/1","body":{"a":[[[[[[[[[[1]]]]]]]]]]}}`,
	}
	for _, fr := range answered {
		f := c.request(fr)
		if f.OK || f.Status != 400 || f.Error.Code != socket.CodeInvalidArgument || f.Error.Message == "" {
			t.Errorf("%s: %s", fr, f.raw)
		}
	}
	if f := c.request(`{"type":"request","id":"8","method":"GET","path":"/nope/1"}`); f.Status != 404 {
		t.Errorf("unknown resource: %s", f.raw)
	}
	// Still serving, until a frame without an id.
	if f := c.request(`{"type":"request","id":"9","method":"GET","path":"/users/1"}`); f.Status != 200 {
		t.Fatalf("after refusals: %s", f.raw)
	}
	c.send(`{"type":"request","method":"GET","path":"/users/1"}`)
	if got := c.closeCode(); got != 4400 {
		t.Fatalf("close code %d, want 4400", got)
	}
	n := dialSocket(t, s.socketURL("v1"))
	n.send(`not json`)
	if got := n.closeCode(); got != 4400 {
		t.Fatalf("close code %d, want 4400", got)
	}
	b := dialSocket(t, s.socketURL("v1"))
	if err := b.c.Write(context.Background(), websocket.MessageBinary, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := b.closeCode(); got != websocket.StatusUnsupportedData {
		t.Fatalf("close code %d, want 1003", got)
	}
}

func TestSocketEndpointRefusals(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	if r := do(t, s.ts, "GET", "/v1/socket", ""); r.Status != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d %s", r.Status, r.Raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, s.socketURL("v1"), nil) // no subprotocol
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("without the subprotocol: %v %v", err, resp)
	}
	if _, err := dialSocketErr(s.socketURL("v9")); err == nil {
		t.Fatal("an unknown version's socket was accepted")
	}
}

func TestSocketOutOfOrderAnswers(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	c.send(`{"type":"request","id":"slow","method":"GET","path":"/users/s/hold"}`)
	<-s.held
	c.send(`{"type":"request","id":"fast","method":"GET","path":"/users/1"}`)
	if f := c.read(); string(f.ID) != `"fast"` || f.Status != 200 {
		t.Fatalf("first answer %s, want the fast one", f.raw)
	}
	close(s.release)
	if f := c.read(); string(f.ID) != `"slow"` || f.Status != 200 {
		t.Fatalf("second answer %s, want the slow one", f.raw)
	}
}

func TestSocketCancelReachesHandler(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	c.send(`{"type":"request","id":"7","method":"GET","path":"/users/x/hold"}`)
	<-s.held
	c.send(`{"type":"cancel","id":"7"}`)
	select {
	case err := <-s.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the handler's context ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancel did not reach the handler")
	}
	if f := c.read(); string(f.ID) != `"7"` || f.OK || f.Error.Code != socket.CodeCanceled {
		t.Fatalf("answer after cancel: %s", f.raw)
	}
	// A cancel of an unknown id is ignored; the socket serves on.
	c.send(`{"type":"cancel","id":"nope"}`)
	if f := c.request(`{"type":"request","id":"8","method":"GET","path":"/users/1"}`); f.Status != 200 {
		t.Fatalf("after cancel: %s", f.raw)
	}
}

func TestSocketTimeout(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	f := c.request(`{"type":"request","id":"t","method":"GET","path":"/users/x/hold","timeout_ms":50}`)
	if f.OK || f.Error.Code != socket.CodeDeadlineExceeded || f.Status != 504 {
		t.Fatalf("timeout_ms: %s", f.raw)
	}
}

func TestSocketIdempotentReplay(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	req := `{"type":"request","id":"%d","method":"POST","path":"/charges","body":{"amount_cents":1250},"idempotency_key":"charge-1"}`
	first := c.request(fmt.Sprintf(req, 1))
	if first.Status != 201 || first.Replayed || first.Location != "/v1/charges/ch_1" {
		t.Fatalf("first: %s", first.raw)
	}
	again := c.request(fmt.Sprintf(req, 2))
	if again.Status != 201 || !again.Replayed || string(again.Result) != string(first.Result) {
		t.Fatalf("retry: %s, first %s", again.raw, first.raw)
	}
	// REST sees the same key (same principal, version, route) as a replay too.
	if r := do(t, s.ts, "POST", "/v1/charges", `{"amount_cents":1250}`, append(bearer(aliceKey), "Idempotency-Key", "charge-1")...); r.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("REST retry: %d %s", r.Status, r.Raw)
	}
	if n := s.charges.Load(); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
	other := c.request(`{"type":"request","id":"3","method":"POST","path":"/charges","body":{"amount_cents":99},"idempotency_key":"charge-1"}`)
	if other.Status != 422 {
		t.Fatalf("same key, other body: %s", other.raw)
	}
}

func TestSocketInFlightBound(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t, gateway.WithSocketLimits(gateway.SocketLimits{InFlight: 2}))
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	c.send(`{"type":"request","id":"1","method":"GET","path":"/users/a/hold"}`)
	c.send(`{"type":"request","id":"2","method":"GET","path":"/users/b/hold"}`)
	<-s.held
	<-s.held
	f := c.request(`{"type":"request","id":"3","method":"GET","path":"/users/1"}`)
	if f.Status != 429 || f.Error.Code != socket.CodeResourceExhausted {
		t.Fatalf("over the bound: %s", f.raw)
	}
	dup := c.request(`{"type":"request","id":"1","method":"GET","path":"/users/1"}`)
	if dup.Status != 429 && dup.Status != 400 {
		t.Fatalf("duplicate id: %s", dup.raw)
	}
	close(s.release)
	got := map[string]bool{}
	for range 2 {
		got[string(c.read().ID)] = true
	}
	if !got[`"1"`] || !got[`"2"`] {
		t.Fatalf("answers %v", got)
	}
}

func TestSocketPingsKeepAliveAndDropSilentClients(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t, gateway.WithSocketLimits(gateway.SocketLimits{PingInterval: 200 * time.Millisecond}))
	pings := make(chan struct{}, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live, _, err := websocket.Dial(ctx, s.socketURL("v1"), &websocket.DialOptions{
		Subprotocols: []string{"streamgate.v1"}, HTTPHeader: http.Header{"Authorization": {"Bearer " + aliceKey}},
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer live.CloseNow()
	frames := make(chan []byte, 1)
	go func() {
		defer close(frames)
		for {
			_, b, err := live.Read(context.Background())
			if err != nil {
				return
			}
			frames <- b
		}
	}()
	for range 5 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("no pings")
		}
	}
	if err := live.Write(ctx, websocket.MessageText, []byte(`{"type":"request","id":"1","method":"GET","path":"/users/1"}`)); err != nil {
		t.Fatal(err)
	}
	if b := <-frames; !strings.Contains(string(b), `"status":200`) {
		t.Fatalf("after pings: %s", b)
	}

	// A client that never reads answers no ping: it is dropped, while
	// the live one stays.
	dialSocket(t, s.socketURL("v1"))
	s.waitMetric(t, "streamgate_gateway_sockets_open", func(v float64) bool { return v == 2 })
	s.waitMetric(t, "streamgate_gateway_sockets_open", func(v float64) bool { return v == 1 })
	if err := live.Write(ctx, websocket.MessageText, []byte(`{"type":"request","id":"2","method":"GET","path":"/users/1"}`)); err != nil {
		t.Fatal(err)
	}
	if b := <-frames; !strings.Contains(string(b), `"status":200`) {
		t.Fatalf("the live client after the silent one was dropped: %s", b)
	}
	_ = live.Close(websocket.StatusNormalClosure, "")
	for range frames {
	}
	s.waitMetric(t, "streamgate_gateway_sockets_open", func(v float64) bool { return v == 0 })
}

func TestSocketSlowReaderCutOff(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t, gateway.WithSocketLimits(gateway.SocketLimits{SendQueue: 8, Stall: 500 * time.Millisecond}))
	fast := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	// latency is the fast client's median over n requests.
	latency := func(n int) time.Duration {
		d := make([]time.Duration, n)
		for i := range n {
			start := time.Now()
			if f := fast.request(fmt.Sprintf(`{"type":"request","id":"%d","method":"GET","path":"/users/1"}`, i)); f.Status != 200 {
				t.Fatalf("fast client: %s", f.raw)
			}
			d[i] = time.Since(start)
		}
		slices.Sort(d)
		return d[n/2]
	}
	latency(5) // warm up
	baseline := latency(30)

	// The slow client asks for 64 KiB answers (cached: it is the socket,
	// not the service, under test) and never reads: the kernel's buffers
	// fill, then its queue.
	slow := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	done := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		n := 0
		defer func() { sent <- n }()
		for ; n < 2000; n++ {
			select {
			case <-done:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := slow.c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"request","id":"%d","method":"GET","path":"/users/1/big"}`, n))
			cancel()
			if err != nil {
				return
			}
		}
	}()
	during := latency(30)
	s.waitMetric(t, "streamgate_gateway_socket_cutoffs_total", func(v float64) bool { return v >= 1 })
	close(done)
	<-sent
	if got := slow.closeCode(); got != 4408 {
		t.Fatalf("slow client closed with %d, want 4408", got)
	}
	// Generous: the fast client's median latency at most 20× its baseline
	// (floored at 1ms) while the slow client is stuck.
	if ratio := float64(during) / float64(max(baseline, time.Millisecond)); ratio > 20 {
		t.Fatalf("fast client's latency %v during the flood vs %v before (%.1f×)", during, baseline, ratio)
	}
	if f := fast.request(`{"type":"request","id":"after","method":"GET","path":"/users/1"}`); f.Status != 200 {
		t.Fatalf("fast client after the cut-off: %s", f.raw)
	}
	t.Logf("fast client: %v before, %v during the flood", baseline, during)
}

func TestSocketDrainAnswersThenCloses1001(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t)
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	c.send(`{"type":"request","id":"held","method":"GET","path":"/users/d/hold"}`)
	<-s.held
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.g.Close(ctx)
	}()
	// New requests are refused while the held one runs.
	refused := c.request(`{"type":"request","id":"new","method":"GET","path":"/users/1"}`)
	for refused.Status == 200 { // the drain may not have reached this socket yet
		refused = c.request(`{"type":"request","id":"new","method":"GET","path":"/users/1"}`)
	}
	if refused.Status != 503 {
		t.Fatalf("during the drain: %s", refused.raw)
	}
	close(s.release)
	if f := c.read(); string(f.ID) != `"held"` || f.Status != 200 {
		t.Fatalf("held answer: %s", f.raw)
	}
	if got := c.closeCode(); got != websocket.StatusGoingAway {
		t.Fatalf("close code %d, want 1001", got)
	}
	<-closed
	if _, err := dialSocketErr(s.socketURL("v1")); err == nil {
		t.Fatal("a socket was accepted after Close")
	}
}

// Every request frame leaves one access line (protocol websocket) saying
// who asked for what and how it ended; the auth frame's token is nowhere
// in the logs.
func TestSocketAccessLog(t *testing.T) {
	t.Parallel()
	logs := newLogCapture()
	s := startSocketSystem(t, gateway.WithLogger(logs.Logger()))
	c := dialSocket(t, s.socketURL("v1"))
	c.send(`{"type":"auth","token":"` + aliceKey + `"}`)
	c.read()
	if f := c.request(`{"type":"request","id":"1","method":"GET","path":"/users/1"}`); f.Status != 200 {
		t.Fatal(f.raw)
	}
	if f := c.request(`{"type":"request","id":"2","action":"GET_USER","resource_id":"404"}`); f.Status != 404 {
		t.Fatal(f.raw)
	}
	lines := accessLines(t, logs)
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2: %s", len(lines), logs)
	}
	for i, want := range []struct{ path, status string }{{"/v1/users/1", "200"}, {"/v1/users/404", "404"}} {
		l := lines[i]
		if l["protocol"] != "websocket" || l["method"] != "GET" || l["path"] != want.path || fmt.Sprint(l["status"]) != want.status ||
			l["route"] != "GET /v1/users/{id}" || l["actions"] != "users.GET_USER" || l["principal"] != "alice" || l["request_id"] == "" {
			t.Errorf("line %d: %v", i, l)
		}
	}
	if strings.Contains(logs.String(), aliceKey) {
		t.Fatal("the key is in the logs")
	}
}

func TestSocketFrameSizeLimit(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t, gateway.WithSocketLimits(gateway.SocketLimits{MaxFrameBytes: 1024}))
	c := dialSocket(t, s.socketURL("v1"), bearer(aliceKey)...)
	if f := c.request(`{"type":"request","id":"1","method":"PUT","path":"/users/1","body":{"name":"` + strings.Repeat("a", 512) + `"}}`); f.Status != 200 {
		t.Fatalf("a frame under the limit: %s", f.raw)
	}
	c.send(`{"type":"request","id":"2","method":"PUT","path":"/users/1","body":{"name":"` + strings.Repeat("a", 2048) + `"}}`)
	if got := c.closeCode(); got != websocket.StatusMessageTooBig {
		t.Fatalf("close code %d, want 1009", got)
	}
}

// A socket's credentials are checked again at every ping: a key the
// configuration no longer has closes the socket with 4401.
func TestSocketRevokedKeyCloses4401(t *testing.T) {
	t.Parallel()
	s := startSocketSystem(t, gateway.WithSocketLimits(gateway.SocketLimits{PingInterval: 50 * time.Millisecond}))
	alice := dialSocket(t, s.socketURL("v1"))
	alice.send(`{"type":"auth","token":"` + aliceKey + `"}`)
	alice.read()
	admin := dialSocket(t, s.socketURL("v1"), bearer(adminKey)...)
	if f := alice.request(`{"type":"request","id":"1","method":"GET","path":"/users/1"}`); f.Status != 200 {
		t.Fatal(f.raw)
	}
	withoutAlice := strings.Replace(socketYAML, "    - {name: alice, secret_env: ALICE_KEY, subject: alice}\n", "", 1)
	if err := s.g.Apply(parseConfig(t, withoutAlice, map[string]*fakeService{"users": s.svc})); err != nil {
		t.Fatal(err)
	}
	if got := alice.closeCode(); got != 4401 {
		t.Fatalf("close code %d, want 4401", got)
	}
	if f := admin.request(`{"type":"request","id":"2","method":"GET","path":"/users/1"}`); f.Status != 200 {
		t.Fatalf("the admin's socket after the reload: %s", f.raw)
	}
}
