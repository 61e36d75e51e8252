package eventlog

import (
	"encoding/json"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/streamgate/streamgate/services/socket"
)

// The headers a service's runtime sets on every event it publishes
// (docs/protocol.md §10), read by the gateway and by callers that
// subscribe over NATS.
const (
	// HeaderTopic is the topic as published: a reader of raw subjects
	// takes it from here, with no unescaping.
	HeaderTopic = "Streamgate-Topic"
	// HeaderService is the publishing service's name.
	HeaderService = "Streamgate-Service"
	// HeaderVisibility is the JSON of the event's socket.Visibility;
	// absent or "{}": only readers whose key delegates see it.
	HeaderVisibility = "Streamgate-Visibility"
	// HeaderInstance is the publishing instance's id.
	HeaderInstance = "Streamgate-Instance"
	// HeaderSeq is the publishing instance's seq for the topic (decimal):
	// from 1, one more per event the instance publishes on it. It is not
	// the stream's sequence, which readers of the log see as Event.Seq.
	HeaderSeq = "Streamgate-Seq"
)

// Subject is the NATS subject events of topic travel on under root, the
// one a Log with that root publishes them to.
func Subject(root, topic string) string {
	return root + "." + subjectTokens(topic)
}

// PatternSubject is the NATS subject that matches every topic a
// subscription's pattern covers: "orders/*" is root.orders.>, "*" is
// root.>. A topic that is no pattern is its Subject.
func PatternSubject(root, pattern string) string {
	if pattern == "*" {
		return root + ".>"
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return root + "." + subjectTokens(prefix) + ".>"
	}
	return Subject(root, pattern)
}

// Visibility is who may see an event, from its HeaderVisibility: the
// zero Visibility (only readers whose key delegates) when the header is
// absent or unreadable. Every reader of events filters with it alike.
func Visibility(h nats.Header) socket.Visibility {
	var v socket.Visibility
	if raw := h.Get(HeaderVisibility); raw != "" && json.Unmarshal([]byte(raw), &v) != nil {
		return socket.Visibility{}
	}
	return v
}
