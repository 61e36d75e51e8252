package load_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// countConns counts the connections ts accepts.
func countConns(ts *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func TestKeepsConnectionsAlive(t *testing.T) {
	for _, tc := range []struct {
		name    string
		method  string
		handler http.HandlerFunc
	}{
		{"content length", "GET", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("hello")) }},
		{"chunked", "GET", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("hel"))
			w.(http.Flusher).Flush() // no Content-Length now: chunked
			_, _ = w.Write([]byte("lo"))
			w.Header().Set("Trailer-Too", "x")
		}},
		{"head", "HEAD", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
		}},
		{"no content", "GET", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewUnstartedServer(tc.handler)
			conns := countConns(ts)
			ts.Start()
			defer ts.Close()
			rep, err := load.Run(context.Background(), load.Options{
				Method: tc.method, URL: ts.URL + "/", Connections: 2, Duration: time.Minute, MaxRequests: 50,
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 50 || rep.Errors() != 0 {
				t.Fatalf("%d requests, statuses %v, transport errors %v (%s)", rep.Requests, rep.Statuses, rep.TransportErrors, rep.FirstTransportError)
			}
			if n := conns.Load(); n > 2 {
				t.Fatalf("%d connections for 2: answers were not read to their end", n)
			}
		})
	}
}

func TestServerThatClosesEveryConnection(t *testing.T) {
	// "Connection: close" on every answer: each request dials anew, and
	// none is an error.
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		_, _ = w.Write([]byte("bye"))
	}))
	conns := countConns(ts)
	ts.Start()
	defer ts.Close()
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/", Connections: 3, Duration: time.Minute, MaxRequests: 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 30 || rep.Statuses[200] != 30 || rep.Errors() != 0 {
		t.Fatalf("%d requests, statuses %v, transport errors %v", rep.Requests, rep.Statuses, rep.TransportErrors)
	}
	if n := conns.Load(); n != 30 {
		t.Fatalf("%d connections for 30 answers that each closed theirs", n)
	}
}

func TestServerThatDropsConnectionsUnanswered(t *testing.T) {
	// Every third request is dropped with its connection: counted as an
	// error by its cause, and the next request on that connection dials
	// again.
	var n atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer ts.Close()
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/", Connections: 1, Duration: time.Minute, MaxRequests: 30,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 30 || rep.Statuses[200] != 20 || rep.TransportErrors["connection closed (EOF)"] != 10 {
		t.Fatalf("%d requests, statuses %v, transport errors %v", rep.Requests, rep.Statuses, rep.TransportErrors)
	}
	if !strings.HasPrefix(rep.FirstTransportError, "GET "+ts.URL+"/: ") {
		t.Fatalf("first transport error %q does not say which request", rep.FirstTransportError)
	}
}

// rawServer answers every request on a connection with answer, then
// closes the connection when closeAfter.
func rawServer(t *testing.T, answer string, closeAfter bool) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line != "\r\n" {
						continue
					}
					if _, err := c.Write([]byte(answer)); err != nil || closeAfter {
						return
					}
				}
			})
		}
	})
	return "http://" + lis.Addr().String()
}

func TestAnswersWithoutLength(t *testing.T) {
	t.Run("body to the close", func(t *testing.T) {
		url := rawServer(t, "HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\n\r\nall of this until the close", true)
		rep, err := load.Run(context.Background(), load.Options{URL: url + "/", Connections: 2, Duration: time.Minute, MaxRequests: 10})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Requests != 10 || rep.Statuses[201] != 10 || rep.Errors() != 0 {
			t.Fatalf("%d requests, statuses %v, transport errors %v", rep.Requests, rep.Statuses, rep.TransportErrors)
		}
	})
	t.Run("HTTP/1.0 keep-alive", func(t *testing.T) {
		url := rawServer(t, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false)
		rep, err := load.Run(context.Background(), load.Options{URL: url + "/", Connections: 1, Duration: time.Minute, MaxRequests: 10})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Requests != 10 || rep.Statuses[200] != 10 || rep.Errors() != 0 {
			t.Fatalf("%d requests, statuses %v, transport errors %v", rep.Requests, rep.Statuses, rep.TransportErrors)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		url := rawServer(t, "SMTP ready\r\n\r\n", false)
		rep, err := load.Run(context.Background(), load.Options{URL: url + "/", Connections: 1, Duration: time.Minute, MaxRequests: 3})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Requests != 3 || rep.TransportErrors["other"] != 3 || !strings.Contains(rep.FirstTransportError, "malformed") {
			t.Fatalf("%d requests, transport errors %v (%s)", rep.Requests, rep.TransportErrors, rep.FirstTransportError)
		}
	})
}

func TestTimeoutCounted(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/", Connections: 2, Duration: time.Minute, MaxRequests: 4, Timeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 4 || rep.TransportErrors["timeout"] != 4 {
		t.Fatalf("%d requests, transport errors %v (%s)", rep.Requests, rep.TransportErrors, rep.FirstTransportError)
	}
	if min := rep.Latency.Percentile(0); min < 50*time.Millisecond {
		t.Fatalf("a request timed out after %v, before its 50ms", min)
	}
}

func TestFixedRateSendsWhatTheDurationHolds(t *testing.T) {
	// At 200/s for 250ms, requests are due at 0, 5ms, …, 245ms: 50 of them,
	// whatever the scheduler's wake-ups.
	s, ts := newIDServer(t)
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/items/{id}", IDs: load.Range{From: 1, To: 9}, Connections: 4,
		Duration: 250 * time.Millisecond, Rate: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 50 || s.hits.Load() != 50 || rep.Errors() != 0 {
		t.Fatalf("%d requests (%d errors), server %d; want 50", rep.Requests, rep.Errors(), s.hits.Load())
	}
	if rep.Elapsed < 245*time.Millisecond {
		t.Fatalf("elapsed %v, the last request was due at 245ms", rep.Elapsed)
	}
}

func TestFixedRateLatencyFromDueTime(t *testing.T) {
	// Each answer takes 20ms; at 100/s on one connection the requests
	// fall ever further behind their schedule (one every 20ms, due every
	// 10ms), and each is charged with its wait: the 20th was due at 190ms
	// and answered near 400ms.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-time.After(20 * time.Millisecond)
	}))
	defer ts.Close()
	rep, err := load.Run(context.Background(), load.Options{
		URL: ts.URL + "/", Connections: 1, Duration: time.Minute, Rate: 100, MaxRequests: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 20 || rep.Errors() != 0 {
		t.Fatalf("%d requests, %d errors", rep.Requests, rep.Errors())
	}
	if lo, hi := rep.Latency.Percentile(0), rep.Latency.Max(); lo < 20*time.Millisecond || hi < 200*time.Millisecond {
		t.Fatalf("latencies %v to %v; want from 20ms to over 200ms", lo, hi)
	}
}

func TestFixedRateStopsWhenContextEnds(t *testing.T) {
	// The server never answers; cancelling ends the run at once, and the
	// requests it interrupted are not counted.
	release := make(chan struct{})
	var got atomic.Int64
	started := make(chan struct{}, 100)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		select {
		case started <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for range 4 {
			<-started
		}
		cancel()
	}()
	begin := time.Now()
	rep, err := load.Run(ctx, load.Options{URL: ts.URL + "/", Connections: 4, Duration: time.Hour, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("Run returned %v after it started", took)
	}
	if rep.Requests != 0 || rep.Errors() != 0 {
		t.Fatalf("%d requests counted (%v), %d errors; the interrupted ones must not count", rep.Requests, rep.TransportErrors, rep.Errors())
	}
}

func TestRequestsAsSent(t *testing.T) {
	// What goes on the wire: the method, the target with its id, the
	// host, net/http's default headers, the caller's, and a body whose
	// length counts its id.
	var mu sync.Mutex
	var seen []string // guarded by mu
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s %s ua=%s ae=%s key=%s len=%d body=%s err=%v",
			r.Method, r.RequestURI, r.Host, r.UserAgent(), r.Header.Get("Accept-Encoding"), r.Header.Get("X-Api-Key"), r.ContentLength, body, err))
		mu.Unlock()
	}))
	defer ts.Close()
	_, err := load.Run(context.Background(), load.Options{
		Method: "PUT", URL: ts.URL + "/a b/{id}?q={id}", IDs: load.Range{From: 9, To: 10},
		Header: http.Header{"X-Api-Key": {"k"}}, Body: []byte("<{id}>"),
		Connections: 1, Duration: time.Minute, MaxRequests: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(ts.URL, "http://")
	want := []string{
		"PUT /a%20b/9?q=9 " + host + " ua=Go-http-client/1.1 ae=gzip key=k len=3 body=<9> err=<nil>",
		"PUT /a%20b/10?q=10 " + host + " ua=Go-http-client/1.1 ae=gzip key=k len=4 body=<10> err=<nil>",
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestHTTPS(t *testing.T) {
	// The server's certificate is not one the system trusts, as net/http's
	// client would say.
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0)
	ts.StartTLS()
	defer ts.Close()
	rep, err := load.Run(context.Background(), load.Options{URL: ts.URL + "/", Duration: time.Minute, MaxRequests: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Requests != 2 || !strings.Contains(rep.FirstTransportError, "certificate") {
		t.Fatalf("%d requests, transport errors %v (%s)", rep.Requests, rep.TransportErrors, rep.FirstTransportError)
	}
}
