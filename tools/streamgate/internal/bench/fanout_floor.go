package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// KindFanoutFloor is bench fanout's floor: a bare WebSocket broadcaster
// that speaks just enough of the gateway's socket protocol for the
// subscribers (a subscribe is answered at once) and, on the same publish
// lines as KindFanout, writes each state's one event frame straight to
// every socket of its topic, one write each, from the publishing loop:
// no service, no hub, no queue, no writer goroutine. Its CPU per
// delivery is what writing the frames costs on the machine, the least a
// server can spend.
const KindFanoutFloor = "fanout-floor"

// floorServer is the floor's sockets by topic.
type floorServer struct {
	mu     sync.Mutex
	topics map[string]map[*websocket.Conn]bool
}

// serveFanoutFloor runs the floor on o.Listen and publishes as the lines
// of input say until ctx ends.
func serveFanoutFloor(ctx context.Context, o ServeOptions, input io.Reader, stdout io.Writer) error {
	f := &floorServer{topics: map[string]map[*websocket.Conn]bool{}}
	lis, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hs := &http.Server{Handler: http.HandlerFunc(f.serveSocket), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(lis) }()
	fmt.Fprintf(stdout, "ready %s\n", lis.Addr())
	pubErr := publishAsTold(ctx, f.publish, input, o.CPUProfile)
	cancel()
	_ = hs.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if errors.Is(pubErr, context.Canceled) {
		return nil
	}
	return pubErr
}

// serveSocket accepts a subscriber's WebSocket, answers its subscribe
// and holds the socket in its topic until it closes.
func (f *floorServer) serveSocket(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"streamgate.v1"}, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	_, msg, err := c.Read(ctx)
	if err != nil {
		return
	}
	var sub struct{ Type, ID, Topic string }
	if json.Unmarshal(msg, &sub) != nil || sub.Type != "subscribe" || sub.Topic == "" {
		_ = c.Close(websocket.StatusPolicyViolation, "the floor takes one subscribe")
		return
	}
	f.mu.Lock()
	if f.topics[sub.Topic] == nil {
		f.topics[sub.Topic] = map[*websocket.Conn]bool{}
	}
	f.topics[sub.Topic][c] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.topics[sub.Topic], c)
		f.mu.Unlock()
	}()
	answer, _ := json.Marshal(map[string]any{"type": "response", "id": sub.ID, "status": http.StatusOK, "result": map[string]int{"seq": 0}})
	if c.Write(ctx, websocket.MessageText, answer) != nil {
		return
	}
	<-c.CloseRead(ctx).Done() // until the subscriber closes, or the floor stops
}

// publish writes one event frame of topic, seq n, with data, to each of
// the topic's sockets in turn.
func (f *floorServer) publish(topic string, n int, data []byte) error {
	frame := append([]byte(`{"type":"event","topic":`), strconv.Quote(topic)...)
	frame = append(frame, `,"seq":`...)
	frame = strconv.AppendInt(frame, int64(n), 10)
	frame = append(frame, `,"data":`...)
	frame = append(frame, data...)
	frame = append(frame, '}')
	f.mu.Lock()
	conns := make([]*websocket.Conn, 0, len(f.topics[topic]))
	for c := range f.topics[topic] {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		_ = c.Write(context.Background(), websocket.MessageText, frame) // a subscriber gone is its own loss
	}
	return nil
}
