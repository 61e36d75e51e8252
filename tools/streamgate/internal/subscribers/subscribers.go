// Package subscribers is the process of WebSocket subscribers that
// streamgate bench fanout starts on CPUs of its own: it opens the
// sockets, subscribes each to its topic, counts what every subscriber
// gets (by each state's number: lost, duplicate, out of order, skipped,
// gapped) and the latency from when each state was due, and reports on
// its stdout.
//
//	err := subscribers.Run(ctx, subscribers.Options{URL: url, Subscribers: 10000, ...}, key, os.Stdout)
package subscribers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/internal/rusage"
	"github.com/streamgate/streamgate/tools/streamgate/internal/load"
)

// The subscribers process's stdout: a line once every subscriber has
// subscribed (or failed to), then one with what they saw (JSON).
const (
	LineSubscribed = "subscribed"
	LineSaw        = "saw "
)

// closeTooSlow is the close code of a WebSocket the gateway cut off for
// not reading fast enough.
const closeTooSlow websocket.StatusCode = 4408

// MaxStates bounds the states per topic a run may publish: each
// subscriber keeps a bit per state.
const MaxStates = 1 << 20

// Options are the subscribers process's: bench fanout runs
// this binary again (`streamgate bench subscribers`) on its own CPUs,
// once a row. The API key comes from EnvKey.
type Options struct {
	URL         string // the gateway's base URL, http://ADDR
	Subscribers int    // WebSockets, one subscription each
	// Resource, Prefix and Topics name the topics: subscriber i watches
	// RESOURCE/PREFIX-(i mod Topics + 1).
	Resource, Prefix string
	Topics           int
	// States is how many states each topic gets (n = 1 … States).
	States int
	// Dials bounds the WebSockets being opened and subscribed at once.
	Dials int
	// SubscribeTimeout bounds opening and subscribing them all; Wait
	// bounds the rest, from then until every subscriber has the last
	// state.
	SubscribeTimeout, Wait time.Duration
}

// Flags declares the subscribers process's flags on fs, filling o.
func (o *Options) Flags(fs *flag.FlagSet) {
	fs.StringVar(&o.URL, "url", "", "the gateway's base URL (http://ADDR)")
	fs.IntVar(&o.Subscribers, "subscribers", 0, "WebSockets, one subscription each")
	fs.StringVar(&o.Resource, "resource", "", "the topics' resource")
	fs.StringVar(&o.Prefix, "prefix", "t", "the topics' ids start with PREFIX-")
	fs.IntVar(&o.Topics, "topics", 1, "topics, the subscribers spread over them")
	fs.IntVar(&o.States, "states", 0, "states published on each topic")
	fs.IntVar(&o.Dials, "dials", 64, "WebSockets being opened at once")
	fs.DurationVar(&o.SubscribeTimeout, "subscribe-timeout", 2*time.Minute, "bound on subscribing them all")
	fs.DurationVar(&o.Wait, "wait", time.Minute, "bound on waiting for the last state, once subscribed")
}

// check refuses options the process cannot run.
func (o Options) check() error {
	switch {
	case !strings.HasPrefix(o.URL, "http://"):
		return errors.New("bench subscribers: needs -url http://ADDR")
	case !onLoopback(o.URL):
		return errors.New("bench subscribers: -url must be on loopback (127.0.0.1, ::1, localhost)")
	case o.Resource == "":
		return errors.New("bench subscribers: needs -resource")
	case o.Subscribers <= 0 || o.Topics <= 0 || o.Dials <= 0:
		return errors.New("bench subscribers: -subscribers, -topics and -dials must be positive")
	case o.States <= 0 || o.States > MaxStates:
		return fmt.Errorf("bench subscribers: -states must be 1 to %d", MaxStates)
	case o.SubscribeTimeout <= 0 || o.Wait <= 0:
		return errors.New("bench subscribers: -subscribe-timeout and -wait must be positive")
	}
	return nil
}

// onLoopback reports whether rawURL's host is a loopback address.
func onLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Result is what the subscribers saw, added up.
type Result struct {
	Connected    int    `json:"connected"`
	Refused      int    `json:"refused"`                 // subscribers that could not subscribe
	FirstRefusal string `json:"first_refusal,omitempty"` // why the first of them could not
	Retries      int    `json:"retries"`                 // subscribes answered 503 and sent again
	Deliveries   int64  `json:"deliveries"`              // states delivered, duplicates aside
	Duplicates   int64  `json:"duplicates"`
	OutOfOrder   int64  `json:"out_of_order"`
	Skipped      int64  `json:"skipped"` // states a conflated event said were skipped
	Gapped       int64  `json:"gapped"`  // states a gap marker covered
	Lost         int64  `json:"lost"`    // states neither delivered, skipped nor gapped before a later one
	// Missing are the states after the last delivered on sockets still
	// open when the wait ended.
	Missing    int64 `json:"missing"`
	Unreadable int64 `json:"unreadable"`
	Latest     int   `json:"latest"`  // subscribers whose last state was the topic's last
	CutOff     int   `json:"cut_off"` // closed with 4408
	Broken     int   `json:"broken"`  // closed otherwise, or failed to read
	// First is when the first state was due, Last when the last delivery
	// came (unix ns).
	First int64 `json:"first_ns"`
	Last  int64 `json:"last_ns"`
	// CPU is this process's CPU time from subscribed to the end.
	CPU     time.Duration   `json:"cpu_ns"`
	Latency *load.Histogram `json:"latency"`
}

// Run opens o.Subscribers WebSockets to the gateway at o.URL,
// subscribes each to its topic, writes "subscribed" and a newline to
// stdout, reads every event until each subscriber has its topic's last
// state (or o.Wait passes), and writes "saw " and what they saw as JSON
// on one line.
func Run(ctx context.Context, o Options, key string, stdout io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	wsURL := "ws" + strings.TrimPrefix(o.URL, "http") + "/v1/socket"
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	subCtx, subscribed := context.WithTimeout(ctx, o.SubscribeTimeout)
	defer subscribed()

	hist := newShardedHistogram()
	subs := make([]*subscriber, o.Subscribers)
	dials := make(chan struct{}, o.Dials)
	var dialed, read sync.WaitGroup
	for i := range subs {
		s := &subscriber{states: o.States, seen: make([]uint64, o.States/64+1), hist: hist.shard(i)}
		subs[i] = s
		topic := o.Resource + "/" + o.Prefix + "-" + strconv.Itoa(i%o.Topics+1)
		dialed.Add(1)
		read.Add(1)
		go func() {
			defer read.Done()
			dials <- struct{}{}
			err := s.subscribe(subCtx, wsURL, key, topic)
			<-dials
			dialed.Done()
			if err != nil {
				s.refusal = err
				return
			}
			s.read(readCtx)
		}()
	}
	dialed.Wait()
	subscribed()
	if _, err := fmt.Fprintln(stdout, LineSubscribed); err != nil {
		return err
	}
	start := rusage.CPU()
	allRead := make(chan struct{})
	go func() {
		read.Wait()
		close(allRead)
	}()
	wait := time.NewTimer(o.Wait)
	defer wait.Stop()
	select {
	case <-allRead:
	case <-wait.C:
	case <-ctx.Done():
	}
	stopReading()
	<-allRead
	res := Result{CPU: rusage.CPU() - start, Latency: hist.merged()}
	for _, s := range subs {
		res.add(s)
	}
	b, err := json.Marshal(res)
	if err == nil {
		_, err = fmt.Fprintf(stdout, "%s%s\n", LineSaw, b)
	}
	// The sockets close once the report is out: the server's CPU time
	// for the row ends with it, and leaving is not fanning out.
	for _, s := range subs {
		if s.conn != nil {
			s.conn.CloseNow()
		}
	}
	return err
}

// subscriber is one WebSocket watching one topic, and what it saw. Its
// goroutine owns every field until RunSubscribers reads them after it
// ended.
type subscriber struct {
	conn    *websocket.Conn
	refusal error
	states  int      // the topic's last state
	seen    []uint64 // a bit per state, set once delivered, skipped or gapped
	// base is the topic's seq when the subscription began, then
	// seq - n of the latest event: seq base+n is state n.
	base int64
	maxN int // the highest state delivered
	// gapPending: a gap marker came; the next event says up to which
	// state it covers.
	gapPending bool
	lastN      int // the state delivered last
	hist       *histShard
	closed     websocket.StatusCode // -1: broken otherwise; 0: still open

	retries                                                         int
	deliveries, duplicates, outOfOrder, skipped, gapped, unreadable int64
	first, last                                                     int64
}

// subscribe opens the WebSocket and subscribes to topic.
func (s *subscriber) subscribe(ctx context.Context, wsURL, key, topic string) error {
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{
		Subprotocols:    []string{"streamgate.v1"},
		HTTPHeader:      http.Header{"X-Api-Key": {key}},
		CompressionMode: websocket.CompressionDisabled,
	})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return err
	}
	s.conn = c
	frame, _ := json.Marshal(map[string]string{"type": "subscribe", "id": "s1", "topic": topic})
	for attempt := 1; ; attempt++ {
		status, answer, err := s.subscribeOnce(ctx, frame)
		if err != nil || status == http.StatusOK {
			return err
		}
		// A 503 (the gateway's stream to the service broke, or is not
		// ready yet) is retried a few times, as a client would.
		if status != http.StatusServiceUnavailable || attempt == subscribeAttempts {
			return fmt.Errorf("subscribe answered %d: %s", status, answer)
		}
		s.retries++
		timer := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// subscribeAttempts bounds the subscribes a subscriber sends when the
// gateway answers 503.
const subscribeAttempts = 5

// subscribeOnce sends the subscribe frame and reads frames until its
// answer: its status, and its error when it has one.
func (s *subscriber) subscribeOnce(ctx context.Context, frame []byte) (int, json.RawMessage, error) {
	if err := s.conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return 0, nil, err
	}
	var answer struct {
		Type   string          `json:"type"`
		ID     string          `json:"id"`
		Status int             `json:"status"`
		Error  json.RawMessage `json:"error"`
		Result struct {
			Seq int64 `json:"seq"`
		} `json:"result"`
	}
	for answer.Type != "response" || answer.ID != "s1" {
		_, b, err := s.conn.Read(ctx)
		if err != nil {
			return 0, nil, err
		}
		if err := json.Unmarshal(b, &answer); err != nil {
			return 0, nil, fmt.Errorf("an unreadable frame: %w", err)
		}
	}
	s.base = answer.Result.Seq
	return answer.Status, answer.Error, nil
}

// read reads events until the topic's last state comes, the socket
// closes or ctx ends.
func (s *subscriber) read(ctx context.Context) {
	buf := make([]byte, 512)
	for s.lastN != s.states {
		msg, err := readMessage(ctx, s.conn, buf)
		if err != nil {
			switch {
			case ctx.Err() != nil:
			case websocket.CloseStatus(err) != -1:
				s.closed = websocket.CloseStatus(err)
			default:
				s.closed = -1
			}
			return
		}
		buf = msg[:cap(msg)]
		s.frame(msg)
	}
}

// readMessage reads one message into buf (grown when it is short).
func readMessage(ctx context.Context, c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// frame accounts for one frame: events and gap markers; others (answers)
// are not counted.
func (s *subscriber) frame(msg []byte) {
	now := time.Now().UnixNano()
	switch {
	case bytes.HasPrefix(msg, []byte(`{"type":"event"`)):
		seq, ok1 := intAfter(msg, `"seq":`)
		data := bytes.Index(msg, []byte(`"data":`))
		if data < 0 {
			s.unreadable++
			return
		}
		n, ok2 := intAfter(msg[data:], `"n":`)
		due, ok3 := intAfter(msg[data:], `"t":`)
		skipped, _ := intAfter(msg[:data], `"skipped":`)
		if !ok1 || !ok2 || !ok3 || n < 1 || n > int64(s.states) {
			s.unreadable++
			return
		}
		// The gateway numbers the topic's events itself (and, after its
		// stream to the service broke, anew): the latest event says
		// which seq is which state, for gap markers.
		s.base = seq - n
		if s.gapPending {
			s.coverGap(int(n) - 1)
			s.gapPending = false
		}
		s.event(int(n), int(skipped), due, now)
	case bytes.HasPrefix(msg, []byte(`{"type":"gap"`)):
		seq, ok := intAfter(msg, `"seq":`)
		if !ok {
			s.unreadable++
			return
		}
		// Every state missing up to the marker's seq is covered, and
		// (the gateway may number the topic's events anew after the
		// loss) every one missing below the next event too.
		s.coverGap(max(int(seq-s.base), s.maxN))
		s.gapPending = true
	}
}

// event accounts for state n, delivered at now, due at due, after
// skipped states of its topic were conflated away.
func (s *subscriber) event(n, skipped int, due, now int64) {
	if !s.mark(n) {
		s.duplicates++
		return
	}
	s.deliveries++
	if n < s.maxN {
		s.outOfOrder++
	}
	for k := max(n-skipped, 1); k < n; k++ {
		if s.mark(k) {
			s.skipped++
		}
	}
	s.maxN, s.lastN = max(s.maxN, n), n
	if s.first == 0 || due < s.first {
		s.first = due
	}
	s.last = now
	s.hist.record(time.Duration(now - due))
}

// coverGap counts the states up to n not yet accounted for as gapped.
func (s *subscriber) coverGap(n int) {
	for k := 1; k <= min(n, s.states); k++ {
		if s.mark(k) {
			s.gapped++
		}
	}
}

// mark sets state n's bit, reporting whether it was clear.
func (s *subscriber) mark(n int) bool {
	w, bit := n/64, uint64(1)<<(n%64)
	if s.seen[w]&bit != 0 {
		return false
	}
	s.seen[w] |= bit
	return true
}

// lost counts the states neither delivered, skipped nor gapped below
// the highest delivered: holes. missing counts those above it on a
// socket still open when the wait ended (queued, or lost at the end:
// the two cannot be told apart); a closed socket's are its cut-off's.
func (s *subscriber) lost() (lost, missing int64) {
	for n := 1; n <= s.states; n++ {
		if s.seen[n/64]&(uint64(1)<<(n%64)) != 0 {
			continue
		}
		switch {
		case n < s.maxN:
			lost++
		case s.closed == 0:
			missing++
		}
	}
	return lost, missing
}

// add adds up one subscriber.
func (r *Result) add(s *subscriber) {
	if s.refusal != nil {
		r.Retries += s.retries
		r.Refused++
		if r.FirstRefusal == "" {
			r.FirstRefusal = s.refusal.Error()
		}
		return
	}
	r.Connected++
	r.Retries += s.retries
	r.Deliveries += s.deliveries
	r.Duplicates += s.duplicates
	r.OutOfOrder += s.outOfOrder
	r.Skipped += s.skipped
	r.Gapped += s.gapped
	r.Unreadable += s.unreadable
	lost, missing := s.lost()
	r.Lost += lost
	r.Missing += missing
	switch s.closed {
	case 0:
	case closeTooSlow:
		r.CutOff++
	default:
		r.Broken++
	}
	if s.lastN == s.states {
		r.Latest++
	}
	if s.first != 0 && (r.First == 0 || s.first < r.First) {
		r.First = s.first
	}
	r.Last = max(r.Last, s.last)
}

// intAfter reads the integer that follows the first key in b.
func intAfter(b []byte, key string) (int64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	b = b[i+len(key):]
	end := 0
	for end < len(b) && (b[end] >= '0' && b[end] <= '9' || end == 0 && b[end] == '-') {
		end++
	}
	v, err := strconv.ParseInt(string(b[:end]), 10, 64)
	return v, err == nil
}

// shardedHistogram spreads the subscribers' latencies over histograms
// of their own, so few wait on one lock.
type shardedHistogram struct{ shards []*histShard }

// histShard is one histogram and its lock.
type histShard struct {
	mu sync.Mutex // guards h
	h  *load.Histogram
}

func newShardedHistogram() *shardedHistogram {
	s := &shardedHistogram{shards: make([]*histShard, 32)}
	for i := range s.shards {
		s.shards[i] = &histShard{h: load.NewHistogram()}
	}
	return s
}

// shard is subscriber i's shard.
func (s *shardedHistogram) shard(i int) *histShard { return s.shards[i%len(s.shards)] }

func (h *histShard) record(d time.Duration) {
	h.mu.Lock()
	h.h.Record(d)
	h.mu.Unlock()
}

// merged adds up the shards (once every subscriber is done).
func (s *shardedHistogram) merged() *load.Histogram {
	all := load.NewHistogram()
	for _, sh := range s.shards {
		sh.mu.Lock()
		all.Merge(sh.h)
		sh.mu.Unlock()
	}
	return all
}
