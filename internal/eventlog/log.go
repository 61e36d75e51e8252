package eventlog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/status"
)

// Window is how much history the log keeps for the topics under Prefix
// (one or more whole segments: "orders" covers "orders/o1" and
// "orders/eu/o2"). Each window is a JetStream stream of its own.
type Window struct {
	Prefix string
	// MaxAge drops events older than it (0: no age limit).
	MaxAge time.Duration
	// MaxBytes drops the oldest events while the stream holds more (0: no
	// size limit).
	MaxBytes int64
}

// Option tunes Open.
type Option func(*options)

type options struct {
	root     string
	replicas int
}

// DefaultRoot is the subject every event's subject starts with.
const DefaultRoot = "streamgate.events"

// WithRoot sets the first tokens of every event subject (default
// DefaultRoot). Stream names are derived from it too, so two logs with
// different roots share a NATS account without meeting.
func WithRoot(root string) Option { return func(o *options) { o.root = root } }

// WithReplicas sets how many servers of a NATS cluster hold each stream
// (default 1).
func WithReplicas(n int) Option { return func(o *options) { o.replicas = n } }

// Log publishes and watches events of topics on JetStream. It is safe for
// concurrent use.
type Log struct {
	js       jetstream.JetStream
	root     string
	replicas int       // WithReplicas
	streams  []*stream // by Prefix; none covers another

	pendingLimit int // see maxPending

	mu    sync.Mutex       // guards feeds
	feeds map[string]*feed // by subject: the topics watched now
}

// stream is one window's JetStream stream.
type stream struct {
	window Window
	name   string
}

// Position is where a watcher left a topic: the seq of the last event it
// received and the epoch that seq belongs to. The zero Position asks for
// the events from now on.
type Position struct {
	Epoch string
	Seq   uint64
}

// Event is one event of a topic.
type Event struct {
	Topic string
	// Epoch is the epoch of the stream the event is in (the one Seq
	// belongs to, Start.Epoch of the watch).
	Epoch string
	// Seq is the event's sequence in its window's stream: it grows with
	// every event of the topic, with gaps where events of other topics of
	// the window fall, and is the same on every reader.
	Seq  uint64
	Data []byte
	// Header is what the publisher set beside the data (Message.Header),
	// with JetStream's own headers ("Nats-Msg-Id", …); nil when none.
	Header nats.Header
	// Time is when JetStream stored the event.
	Time time.Time
	// Ended marks the last event a watcher gets when the topic's stream
	// was deleted while watched: it has no Seq or Data, and the watcher
	// watches again (in the stream's new epoch, not recovered).
	Ended bool
}

// Open makes sure each window's stream exists with its limits (creating
// or updating it, so opening again with the same windows changes
// nothing) and returns the log over them.
func Open(ctx context.Context, js jetstream.JetStream, windows []Window, opts ...Option) (*Log, error) {
	o := options{root: DefaultRoot, replicas: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.root == "" || strings.ContainsAny(o.root, "*> \t\r\n") || strings.HasPrefix(o.root, ".") || strings.HasSuffix(o.root, ".") {
		return nil, fmt.Errorf("eventlog: root %q is not a subject without wildcards", o.root)
	}
	l := &Log{js: js, root: o.root, replicas: o.replicas, pendingLimit: maxPending, feeds: map[string]*feed{}}
	for _, w := range windows {
		if err := checkTopic(w.Prefix); err != nil {
			return nil, fmt.Errorf("eventlog: window prefix: %w", err)
		}
		if w.MaxAge < 0 || w.MaxBytes < 0 {
			return nil, fmt.Errorf("eventlog: window %q: negative limit", w.Prefix)
		}
		for _, s := range l.streams {
			if covers(s.window.Prefix, w.Prefix) || covers(w.Prefix, s.window.Prefix) {
				return nil, fmt.Errorf("eventlog: windows %q and %q overlap", s.window.Prefix, w.Prefix)
			}
		}
		s := &stream{window: w, name: strings.ToUpper(strings.ReplaceAll(o.root, ".", "_")) + "_" + streamSuffix(w.Prefix)}
		if _, err := js.CreateOrUpdateStream(ctx, l.streamConfig(s, o.replicas)); err != nil {
			return nil, fmt.Errorf("eventlog: stream %s: %w", s.name, err)
		}
		l.streams = append(l.streams, s)
	}
	return l, nil
}

// Ensure makes the stream of the window holding topic again if it was
// deleted (a new epoch), as Open made it; it changes nothing otherwise.
// A reader whose watch ended (Event.Ended) calls it before watching
// again, so the topic's history goes on in a stream of the new epoch.
func (l *Log) Ensure(ctx context.Context, topic string) error {
	_, s, err := l.locate(topic)
	if err != nil {
		return err
	}
	if _, err := l.js.CreateOrUpdateStream(ctx, l.streamConfig(s, l.replicas)); err != nil {
		return unavailable(err, "the event stream of %q cannot be made", topic)
	}
	return nil
}

// streamConfig is the configuration of a window's stream: limits
// retention, the window's limits, and a de-duplication window of two
// minutes (never longer than the window's age).
func (l *Log) streamConfig(s *stream, replicas int) jetstream.StreamConfig {
	dedup := 2 * time.Minute
	if s.window.MaxAge > 0 {
		dedup = min(dedup, s.window.MaxAge)
	}
	maxBytes := s.window.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        s.name,
		Description: "streamgate events of the topics under " + s.window.Prefix,
		Subjects:    []string{l.root + "." + subjectTokens(s.window.Prefix) + ".>", l.root + "." + subjectTokens(s.window.Prefix)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      s.window.MaxAge,
		MaxBytes:    maxBytes,
		Duplicates:  dedup,
		Replicas:    replicas,
		Storage:     jetstream.FileStorage,
	}
}

// locate checks a topic and finds its subject and stream.
func (l *Log) locate(topic string) (subject string, s *stream, err error) {
	if err := checkTopic(topic); err != nil {
		return "", nil, err
	}
	for _, s := range l.streams {
		if covers(s.window.Prefix, topic) {
			return l.root + "." + subjectTokens(topic), s, nil
		}
	}
	return "", nil, status.Errorf(status.CodeInvalidArgument, "no event window holds topic %q", topic)
}

// Message is an event to publish.
type Message struct {
	Topic string
	Data  []byte
	// ID, when set, de-duplicates: see PublishMsg.
	ID string
	// Header travels with the event (Event.Header), e.g. who may see it.
	// Names starting "Nats-" are JetStream's and must not be set here.
	Header nats.Header
}

// Publish stores an event of topic: PublishMsg with no header.
func (l *Log) Publish(ctx context.Context, topic string, data []byte, id string) (seq uint64, err error) {
	return l.PublishMsg(ctx, Message{Topic: topic, Data: data, ID: id})
}

// PublishMsg stores an event and returns its seq once JetStream has
// acknowledged it. A non-empty ID de-duplicates: publishing again with an
// ID already stored in the last two minutes (or the window's age, if
// shorter) stores nothing and returns the first event's seq, so a retried
// publish is stored once.
//
// A Log opened with windows refuses a topic under none of them
// (INVALID_ARGUMENT). A Log opened with none (a service's, which only
// publishes) stores the event in whatever stream holds its subject, made
// by a Log that watches (a gateway's); a topic no stream holds is then
// UNAVAILABLE.
func (l *Log) PublishMsg(ctx context.Context, m Message) (seq uint64, err error) {
	subject := l.root + "." + subjectTokens(m.Topic)
	if len(l.streams) > 0 {
		subject, _, err = l.locate(m.Topic) // a topic under none of the windows is refused
	} else {
		err = checkTopic(m.Topic)
	}
	if err != nil {
		return 0, err
	}
	for name := range m.Header {
		if strings.HasPrefix(strings.ToLower(name), "nats-") {
			return 0, status.Errorf(status.CodeInvalidArgument, "event header %q is reserved for JetStream", name)
		}
	}
	// A copy: JetStream adds the id to the header it is given, and the
	// caller's own must stay as it was for a retry of the same message.
	msg := &nats.Msg{Subject: subject, Data: m.Data, Header: maps.Clone(m.Header)}
	var opts []jetstream.PublishOpt
	if m.ID != "" {
		opts = append(opts, jetstream.WithMsgID(m.ID))
	}
	ack, err := l.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return 0, unavailable(err, "the event of %q was not stored", m.Topic)
	}
	return ack.Sequence, nil
}

// Holds says whether a stream holds topic's subject now: a publisher
// without windows asks before storing, since an event no stream holds but
// something subscribes to over NATS gets no "no stream" answer, only a
// wait for an acknowledgement that never comes.
func (l *Log) Holds(ctx context.Context, topic string) (bool, error) {
	if err := checkTopic(topic); err != nil {
		return false, err
	}
	_, err := l.js.StreamNameBySubject(ctx, Subject(l.root, topic))
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return false, nil
	case err != nil:
		return false, unavailable(err, "which stream holds %q is unknown", topic)
	}
	return true, nil
}

// Epoch returns the epoch of the stream holding topic now: it changes
// when the stream is deleted and made again (its seqs start again then).
func (l *Log) Epoch(ctx context.Context, topic string) (string, error) {
	_, s, err := l.locate(topic)
	if err != nil {
		return "", err
	}
	st, err := l.js.Stream(ctx, s.name)
	if err != nil {
		return "", unavailable(err, "the event stream of %q cannot be read", topic)
	}
	return epochOf(st.CachedInfo()), nil
}

// epochOf is a stream's creation time in nanoseconds, in base 36: a
// string, since JavaScript numbers cannot hold the nanoseconds exactly.
func epochOf(info *jetstream.StreamInfo) string {
	return strconv.FormatInt(info.Created.UnixNano(), 36)
}

// unavailable is the error of a call JetStream could not serve: the
// context's own (DEADLINE_EXCEEDED, CANCELED) when it ended, else
// UNAVAILABLE with what JetStream said as the cause.
func unavailable(err error, format string, args ...any) error {
	var se *status.Error
	if errors.As(err, &se) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return status.AsError(err)
	}
	return status.Errorf(status.CodeUnavailable, format, args...).WithCause(err)
}
