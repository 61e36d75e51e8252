package wsedge

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// Limits bound each connection of the WebSocket endpoint
// GET /{version}/socket (README, "WebSocket"). A zero field takes its
// default.
type Limits struct {
	// InFlight bounds the request frames one socket runs at once; a
	// request over it is answered 429 RESOURCE_EXHAUSTED (reason
	// too_many_in_flight). Default 64.
	InFlight int
	// MaxFrameBytes bounds one frame from the client; a larger frame
	// closes the socket with 1009. Default: the configuration's
	// http.max_body_bytes plus 64 KiB.
	MaxFrameBytes int64
	// SendQueue bounds the frames waiting to be written to the client,
	// answers and events each. An answer waits for room (the socket reads
	// no further frame meanwhile, so a client sending faster than it
	// reads is slowed, not cut off); an event cannot wait (a topic's
	// events go to every watcher at once), so a client with SendQueue
	// events waiting is cut off with close code 4408, and so is one that
	// takes no frame for Stall while its answers wait: it never slows
	// anyone else. Default 256.
	SendQueue int
	// Topics bounds one socket's subscriptions; more are answered 429
	// RESOURCE_EXHAUSTED. Default 256.
	Topics int
	// PingInterval is how often the gateway pings a socket (keeping it
	// alive through proxies); a client that has not answered a ping
	// within PingInterval (at least 2s) is disconnected. Default 30s.
	PingInterval time.Duration
	// Stall is how long a client may take no frame while answers wait
	// for room in its send queue before it is cut off with close code
	// 4408 (it does not read). Default 5s.
	Stall time.Duration
	// Backlog bounds the events a socket holds for its resumed
	// subscriptions (subscribe with since), whose events, the missed ones
	// first, go out at the pace the client reads. Past it a
	// subscription's held events are dropped for a gap marker (the client
	// refetches), and its later events follow it. Default 4096.
	Backlog int
}

// The defaults of Limits.
const (
	defaultSocketInFlight  = 64
	defaultSocketQueue     = 256
	defaultSocketTopics    = 256
	defaultSocketPing      = 30 * time.Second
	defaultSocketStall     = 5 * time.Second
	defaultSocketBacklog   = 4096
	socketFrameOverhead    = 64 << 10 // a frame's fields around its body
	socketFlushLimit       = 5 * time.Second
	maxCloseReasonBytes    = 123
	minPongWait            = 2 * time.Second
	socketDrainingMessage  = "the gateway is going away: reconnect"
	socketQueueFullMessage = "send queue full: the client does not read"
)

// withDefaults fills in the zero fields of l.
func (l Limits) withDefaults(maxBodyBytes int64) Limits {
	if l.InFlight <= 0 {
		l.InFlight = defaultSocketInFlight
	}
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = maxBodyBytes + socketFrameOverhead
	}
	if l.SendQueue <= 0 {
		l.SendQueue = defaultSocketQueue
	}
	if l.Topics <= 0 {
		l.Topics = defaultSocketTopics
	}
	if l.Backlog <= 0 {
		l.Backlog = defaultSocketBacklog
	}
	if l.PingInterval <= 0 {
		l.PingInterval = defaultSocketPing
	}
	if l.Stall <= 0 {
		l.Stall = defaultSocketStall
	}
	return l
}

// Serve serves one socket of the version until it closes: r is an
// upgrade CheckUpgrade accepted. The credentials of its Authorization (or
// X-API-Key) header are checked at the upgrade; refused, the socket
// closes with 4401.
func (e *Edge) Serve(w http.ResponseWriter, r *http.Request, version string) {
	creds := Credentials{Authorization: r.Header.Get("Authorization"), APIKey: r.Header.Get(headerAPIKey)}
	adm, aerr := e.core.Admit(creds)
	cw := &corkWriter{ResponseWriter: w}
	ws, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		Subprotocols:   []string{socketSubprotocol},
		OriginPatterns: adm.Origins,
	})
	if err != nil {
		return // Accept answered
	}
	c := newWSConn(e, ws, cw.conn, version, e.limits.withDefaults(adm.MaxBodyBytes))
	if aerr != nil {
		_ = ws.Close(closeUnauthenticated, closeReason(aerr.Message))
		return
	}
	if adm.Present {
		c.creds.set(creds)
	}
	c.serve()
}

// headerAPIKey is REST's API key header.
const headerAPIKey = "X-Api-Key"

// closeReason fits a message into a close frame.
func closeReason(msg string) string {
	if len(msg) > maxCloseReasonBytes {
		msg = msg[:maxCloseReasonBytes]
	}
	return msg
}

// wsConn is one WebSocket connection. Its handler goroutine reads
// (readLoop); its outbox's goroutine writes, its keepAlive's pings, its
// closer's closes; each request frame runs in a goroutine of its own, at
// most limits.InFlight at once (requests).
type wsConn struct {
	e       *Edge
	ws      *websocket.Conn
	version string
	limits  Limits

	ctx    context.Context // ends when the socket is over
	cancel context.CancelFunc

	creds     sharedCredentials // what requests present, as REST's headers
	out       *outbox           // the frames for the client
	closer    *closer           // the close, asked for once
	requests  *inFlight         // the frames being served
	subs      *subscriptions    // the topics watched
	keepAlive *keepAlive        // the pings
}

// newWSConn makes the connection ws (over cork) of the version.
func newWSConn(e *Edge, ws *websocket.Conn, cork *corkConn, version string, limits Limits) *wsConn {
	c := &wsConn{
		e: e, ws: ws, version: version, limits: limits,
		closer:   newCloser(),
		requests: newInFlight(limits.InFlight),
		subs:     newSubscriptions(limits.Topics),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.out = newOutbox(c.ctx, ws, cork, limits, c.closer, e.core.Observe)
	c.keepAlive = &keepAlive{
		ws: ws, ctx: c.ctx, interval: limits.PingInterval, creds: &c.creds, core: e.core, closer: c.closer,
		done: make(chan struct{}),
	}
	return c
}

// sharedCredentials are a socket's credentials: set by its auth frame,
// read by its requests and its pings.
type sharedCredentials struct {
	mu    sync.Mutex // guards creds
	creds Credentials
}

// get returns the credentials.
func (s *sharedCredentials) get() Credentials {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.creds
}

// set replaces the credentials.
func (s *sharedCredentials) set(creds Credentials) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds = creds
}

// serve runs the socket until it closes, then waits for everything that
// ran for it.
func (c *wsConn) serve() {
	if !c.e.sockets.add(c) {
		_ = c.ws.Close(closeGoingAway, socketDrainingMessage)
		return
	}
	defer c.e.sockets.remove(c)
	c.e.core.Observe(observe.ConnEvent{Kind: observe.SocketOpened})
	c.ws.SetReadLimit(c.limits.MaxFrameBytes)
	go c.out.writeLoop()
	go c.keepAlive.loop()
	go c.closer.loop(c.ctx, c.ws, c.out)
	c.readLoop()
	c.cancel()
	c.requests.wait()
	c.subs.stopAll()
	<-c.out.done
	<-c.keepAlive.done
	<-c.closer.done
	_ = c.ws.CloseNow()
	c.e.core.Observe(observe.ConnEvent{Kind: observe.SocketClosed})
}

// readLoop reads frames until the socket closes. Once a close was asked
// for, it only reads on so the close handshake completes.
func (c *wsConn) readLoop() {
	first := true
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		if c.closer.asked() {
			continue
		}
		if typ != websocket.MessageText {
			c.e.core.Observe(observe.ConnEvent{Kind: observe.FrameReceived, FrameType: "invalid"})
			c.closer.ask(closeRequest{code: websocket.StatusUnsupportedData, reason: "frames are JSON text"})
			continue
		}
		f, ferr := decodeFrame(data)
		if ferr != nil {
			c.e.core.Observe(observe.ConnEvent{Kind: observe.FrameReceived, FrameType: "invalid"})
			if ferr.id == nil {
				c.closer.ask(closeRequest{code: closeInvalidFrame, reason: closeReason(ferr.err.Message)})
				continue
			}
			c.out.answer(responseFrame(ferr.id, failed(http.StatusBadRequest, ferr.err)))
			first = false
			continue
		}
		c.e.core.Observe(observe.ConnEvent{Kind: observe.FrameReceived, FrameType: f.Type})
		c.handle(f, first)
		first = false
	}
}

// handle serves a frame read; first says it is the socket's first.
func (c *wsConn) handle(f *clientFrame, first bool) {
	switch f.Type {
	case frameAuth:
		c.auth(f, first)
	case frameRequest:
		c.startRequest(f)
	case frameCancel:
		c.requests.cancel(f.key)
	case frameSubscribe:
		c.subscribeFrame(f)
	case frameUnsubscribe:
		c.unsubscribe(f)
	}
}

// auth serves an auth frame: only the first frame may be one; its token
// is checked as REST checks "Authorization: Bearer TOKEN" and becomes the
// socket's credentials, or the socket closes with 4401.
func (c *wsConn) auth(f *clientFrame, first bool) {
	if !first {
		c.closer.ask(closeRequest{code: closeInvalidFrame, reason: "an auth frame must be the first frame"})
		return
	}
	authorization := "Bearer " + f.Token
	var err *status.Error
	if f.Token == "" {
		err = socket.Errorf(socket.CodeUnauthenticated, "an auth frame needs a token")
	} else {
		_, err = c.e.core.Admit(Credentials{Authorization: authorization})
	}
	if err != nil {
		c.closer.ask(closeRequest{code: closeUnauthenticated, reason: closeReason(err.Message)})
		return
	}
	c.creds.set(Credentials{Authorization: authorization})
	c.out.answer(authOKFrame)
}

// drain closes the socket politely: new requests are refused, the
// answers of those in flight are sent (until ctx ends), then it closes
// with 1001.
func (c *wsConn) drain(ctx context.Context) {
	c.requests.refuseNew()
	c.subs.stopAll()
	c.requests.waitUntil(ctx)
	c.closer.ask(closeRequest{code: closeGoingAway, reason: socketDrainingMessage, flush: true})
}

// socketSet is the endpoint's open sockets, for the drain.
type socketSet struct {
	mu     sync.Mutex // guards conns and closed
	conns  map[*wsConn]struct{}
	closed bool           // the gateway closed: sockets are refused
	wg     sync.WaitGroup // sockets being served; Add under mu while !closed

	lastEvent atomic.Pointer[encodedEvent] // the last event frame encoded (eventFrame)
}

// isClosed reports whether the gateway closed: new sockets are refused.
func (s *socketSet) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// add registers a socket; false once the gateway is closing.
func (s *socketSet) add(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[*wsConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *socketSet) remove(c *wsConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// drain refuses new sockets, drains the open ones (see wsConn.drain) and
// waits, until ctx ends, for them to close; then it closes those left.
func (s *socketSet) drain(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var drains sync.WaitGroup
	for _, c := range conns {
		drains.Go(func() { c.drain(ctx) })
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			_ = c.ws.CloseNow()
		}
		<-done
	}
	drains.Wait()
}
