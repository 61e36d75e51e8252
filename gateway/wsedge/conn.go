package wsedge

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/services/socket"
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
}

// The defaults of Limits.
const (
	defaultSocketInFlight  = 64
	defaultSocketQueue     = 256
	defaultSocketTopics    = 256
	defaultSocketPing      = 30 * time.Second
	defaultSocketStall     = 5 * time.Second
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
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{socketSubprotocol},
		OriginPatterns: adm.Origins,
	})
	if err != nil {
		return // Accept answered
	}
	c := newWSConn(e, ws, version, e.limits.withDefaults(adm.MaxBodyBytes))
	if aerr != nil {
		_ = ws.Close(closeUnauthenticated, closeReason(aerr.Message))
		return
	}
	if adm.Present {
		c.creds = creds
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

// wsConn is one WebSocket connection. Its handler goroutine reads; one
// goroutine writes (writeLoop), one pings (pingLoop), one closes
// (closeLoop); each request frame runs in a goroutine of its own, at most
// limits.InFlight at once.
type wsConn struct {
	e       *Edge
	ws      *websocket.Conn
	version string
	limits  Limits

	ctx    context.Context // ends when the socket is over
	cancel context.CancelFunc

	queue      chan queued       // frames for writeLoop: SendQueue answers and SendQueue events
	answers    chan struct{}     // one per answer in queue (or being written): send waits for room here
	events     atomic.Int64      // events in queue (or being written); sendEvent cuts off past SendQueue
	written    atomic.Uint64     // frames written: a waiting send tells a slow client from one that stopped
	slots      chan struct{}     // one per request running
	closeReq   chan closeRequest // to closeLoop; buffered 1
	flush      chan struct{}     // closed: writeLoop writes what is queued, then ends
	closing    atomic.Bool       // a close was asked for: frames are dropped, not queued
	closed     chan struct{}     // closed with closing's first swap: sends waiting for room give up
	writerDone chan struct{}
	pingerDone chan struct{}
	closerDone chan struct{}

	mu       sync.Mutex                    // guards creds, inflight, topics and draining
	creds    Credentials                   // what requests present, as REST's headers
	inflight map[string]context.CancelFunc // requests running, by id
	topics   map[string]*wsTopic           // subscriptions, by topic
	draining bool                          // new requests are refused
	handlers sync.WaitGroup                // request goroutines; Add under mu while !draining
}

// queued is a frame waiting for writeLoop: an answer (it holds a place in
// wsConn.answers) or an event (counted in wsConn.events).
type queued struct {
	frame  []byte
	answer bool
}

// credentials returns the socket's credentials.
func (c *wsConn) credentials() Credentials {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.creds
}

// recheck authenticates the socket's credentials again (the
// configuration in force may have removed the key, the token may have
// expired): refused, the socket closes with 4401.
func (c *wsConn) recheck() {
	creds := c.credentials()
	if creds == (Credentials{}) {
		return // anonymous
	}
	if _, err := c.e.core.Admit(creds); err != nil {
		c.closeWith(closeRequest{code: closeUnauthenticated, reason: closeReason(err.Message)})
	}
}

// closeRequest is a close code and reason for closeLoop; flush writes the
// frames queued first.
type closeRequest struct {
	code   websocket.StatusCode
	reason string
	flush  bool
}

func newWSConn(e *Edge, ws *websocket.Conn, version string, limits Limits) *wsConn {
	c := &wsConn{
		e: e, ws: ws, version: version, limits: limits,
		queue:      make(chan queued, 2*limits.SendQueue),
		answers:    make(chan struct{}, limits.SendQueue),
		closed:     make(chan struct{}),
		slots:      make(chan struct{}, limits.InFlight),
		closeReq:   make(chan closeRequest, 1),
		flush:      make(chan struct{}),
		writerDone: make(chan struct{}),
		pingerDone: make(chan struct{}),
		closerDone: make(chan struct{}),
		inflight:   map[string]context.CancelFunc{},
		topics:     map[string]*wsTopic{},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// serve runs the socket until it closes, then waits for everything that
// ran for it.
func (c *wsConn) serve() {
	if !c.e.sockets.add(c) {
		_ = c.ws.Close(closeGoingAway, socketDrainingMessage)
		return
	}
	defer c.e.sockets.remove(c)
	c.e.core.Observe(ConnEvent{Kind: SocketOpened})
	c.ws.SetReadLimit(c.limits.MaxFrameBytes)
	go c.writeLoop()
	go c.pingLoop()
	go c.closeLoop()
	c.readLoop()
	c.cancel()
	c.handlers.Wait()
	c.stopTopics()
	<-c.writerDone
	<-c.pingerDone
	<-c.closerDone
	_ = c.ws.CloseNow()
	c.e.core.Observe(ConnEvent{Kind: SocketClosed})
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
		if c.closing.Load() {
			continue
		}
		if typ != websocket.MessageText {
			c.e.core.Observe(ConnEvent{Kind: FrameReceived, FrameType: "invalid"})
			c.closeWith(closeRequest{code: websocket.StatusUnsupportedData, reason: "frames are JSON text"})
			continue
		}
		f, ferr := decodeFrame(data)
		if ferr != nil {
			c.e.core.Observe(ConnEvent{Kind: FrameReceived, FrameType: "invalid"})
			if ferr.id == nil {
				c.closeWith(closeRequest{code: closeInvalidFrame, reason: closeReason(ferr.err.Message)})
				continue
			}
			c.send(responseFrame(ferr.id, failed(http.StatusBadRequest, ferr.err)))
			first = false
			continue
		}
		c.e.core.Observe(ConnEvent{Kind: FrameReceived, FrameType: f.Type})
		wasFirst := first
		first = false
		switch f.Type {
		case frameAuth:
			c.auth(f, wasFirst)
		case frameRequest:
			c.startRequest(f)
		case frameCancel:
			c.mu.Lock()
			cancel := c.inflight[f.key]
			c.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		case frameSubscribe, frameUnsubscribe:
			c.topicFrame(f)
		}
	}
}

// auth serves an auth frame: only the first frame may be one; its token
// is checked as REST checks "Authorization: Bearer TOKEN" and becomes the
// socket's credentials, or the socket closes with 4401.
func (c *wsConn) auth(f *clientFrame, first bool) {
	if !first {
		c.closeWith(closeRequest{code: closeInvalidFrame, reason: "an auth frame must be the first frame"})
		return
	}
	authorization := "Bearer " + f.Token
	var err *socket.Error
	if f.Token == "" {
		err = socket.Errorf(socket.CodeUnauthenticated, "an auth frame needs a token")
	} else {
		_, err = c.e.core.Admit(Credentials{Authorization: authorization})
	}
	if err != nil {
		c.closeWith(closeRequest{code: closeUnauthenticated, reason: closeReason(err.Message)})
		return
	}
	c.mu.Lock()
	c.creds = Credentials{Authorization: authorization}
	c.mu.Unlock()
	c.send(authOKFrame)
}

// send queues an answer frame for the client, waiting while SendQueue
// answers wait already: the reader and the requests then go at the pace
// the client reads, and a client that sends faster than it reads is slowed
// (TCP tells it), never cut off. A client that takes no frame at all for
// limits.Stall meanwhile does not read: it is cut off (4408). Frames for a
// socket that is closing are dropped.
func (c *wsConn) send(frame []byte) {
	if c.closing.Load() || c.ctx.Err() != nil {
		return // closing, or over: nobody writes the queue any more
	}
	select {
	case c.answers <- struct{}{}:
	default:
		if !c.awaitRoom() {
			return
		}
	}
	c.queue <- queued{frame: frame, answer: true} // never waits: it has room for SendQueue of each kind
}

// awaitRoom waits for room for an answer; false when the socket closes
// first, or the client took no frame for limits.Stall (it is cut off).
func (c *wsConn) awaitRoom() bool {
	timer := time.NewTimer(c.limits.Stall)
	defer timer.Stop()
	seen := c.written.Load()
	for {
		select {
		case c.answers <- struct{}{}:
			return true
		case <-timer.C:
			if now := c.written.Load(); now != seen {
				seen = now // slow, but reading
				timer.Reset(c.limits.Stall)
				continue
			}
			c.cutOff()
			return false
		case <-c.closed:
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}

// sendEvent queues an event frame for the client without ever waiting
// (the topic's other watchers wait for it): a client with SendQueue
// events waiting is cut off (4408). Frames for a socket that is closing
// are dropped.
func (c *wsConn) sendEvent(frame []byte) {
	if c.closing.Load() || c.ctx.Err() != nil {
		return
	}
	if c.events.Add(1) > int64(c.limits.SendQueue) {
		c.events.Add(-1)
		c.cutOff()
		return
	}
	c.queue <- queued{frame: frame} // never waits: see send
}

// cutOff closes the socket of a client that does not read (4408).
//
// The writer may be stuck writing to the client (its buffers are full):
// the close frame then goes out once the client reads again, or, if it
// does not within 5s, the connection is dropped without one.
func (c *wsConn) cutOff() {
	if c.ctx.Err() == nil && c.closeWith(closeRequest{code: closeTooSlow, reason: socketQueueFullMessage}) {
		c.e.core.Observe(ConnEvent{Kind: SocketCutOff})
	}
}

// closeWith asks closeLoop to close the socket; only the first call
// counts (it reports whether it was the first).
func (c *wsConn) closeWith(req closeRequest) bool {
	if c.closing.Swap(true) {
		return false
	}
	close(c.closed)
	c.closeReq <- req // buffered 1, and only the first call sends
	return true
}

// writeLoop writes queued frames in order until the socket is over, or,
// once flush is closed, until the queue is empty.
func (c *wsConn) writeLoop() {
	defer close(c.writerDone)
	write := func(q queued) bool {
		err := c.ws.Write(context.Background(), websocket.MessageText, q.frame)
		if q.answer {
			<-c.answers
		} else {
			c.events.Add(-1)
		}
		if err != nil {
			_ = c.ws.CloseNow() // the reader ends too
			return false
		}
		c.written.Add(1)
		c.e.core.Observe(ConnEvent{Kind: FrameSent})
		return true
	}
	for {
		select {
		case q := <-c.queue:
			if !write(q) {
				return
			}
		case <-c.flush:
			for {
				select {
				case q := <-c.queue:
					if !write(q) {
						return
					}
				default:
					return
				}
			}
		case <-c.ctx.Done():
			return
		}
	}
}

// pingLoop pings the client every PingInterval; a client that has not
// answered within PingInterval (at least minPongWait) is disconnected. At
// each ping the credentials are checked again (recheck).
func (c *wsConn) pingLoop() {
	defer close(c.pingerDone)
	tick := time.NewTicker(c.limits.PingInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return
		}
		c.recheck()
		ctx, cancel := context.WithTimeout(c.ctx, max(c.limits.PingInterval, minPongWait))
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			if c.ctx.Err() == nil && !c.closing.Load() {
				_ = c.ws.CloseNow()
			}
			return
		}
	}
}

// closeLoop closes the socket with the first close asked for, after the
// queued frames when it says flush. A socket that ends without one (the
// client closed it) needs none.
func (c *wsConn) closeLoop() {
	defer close(c.closerDone)
	var req closeRequest
	select {
	case req = <-c.closeReq:
	case <-c.ctx.Done():
		select {
		case req = <-c.closeReq:
		default:
			return
		}
	}
	if req.flush {
		close(c.flush)
		timer := time.NewTimer(socketFlushLimit)
		select {
		case <-c.writerDone:
		case <-timer.C:
		}
		timer.Stop()
	}
	_ = c.ws.Close(req.code, req.reason)
}

// drain closes the socket politely: new requests are refused, the
// answers of those in flight are sent (until ctx ends), then it closes
// with 1001.
func (c *wsConn) drain(ctx context.Context) {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.stopTopics()
	done := make(chan struct{})
	go func() { c.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	c.closeWith(closeRequest{code: closeGoingAway, reason: socketDrainingMessage, flush: true})
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
