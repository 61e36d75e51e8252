package caller

import (
	"sync"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// topicFrames are the (un)subscribe frames a stream has yet to send: the
// latest wanted state of each changed topic. A goroutine of the stream's
// own (sendTopics) sends them, so whoever changes the subscriptions never
// waits for a stream that stopped reading, and holds no lock the receive
// loops or event delivery need while a frame waits.
type topicFrames struct {
	mu      sync.Mutex
	want    map[string]bool // topic → subscribe (true) or unsubscribe
	order   []string        // the changed topics, in the order of their first change
	busy    bool            // sendTopics is sending what it took
	changed chan struct{}   // 1-buffered: something was set
}

func newTopicFrames() topicFrames {
	return topicFrames{want: map[string]bool{}, changed: make(chan struct{}, 1)}
}

// set has the stream (un)subscribe topic: the frame goes straight to the
// sender's queue when nothing is pending before it and the queue has
// room (so it precedes the caller's next request, as before), else it is
// recorded for sendTopics, superseding a change of the topic not sent
// yet. It never waits.
func (st *clientStream) setTopic(topic string, subscribe bool) {
	tf := &st.topics
	tf.mu.Lock()
	if !tf.busy && len(tf.order) == 0 {
		st.unsent.Add(1)
		select {
		case st.sendq <- outgoing{frame: topicFrame(topic, subscribe)}:
			tf.mu.Unlock()
			return
		default:
			st.unsent.Add(-1)
		}
	}
	if _, ok := tf.want[topic]; !ok {
		tf.order = append(tf.order, topic)
	}
	tf.want[topic] = subscribe
	tf.mu.Unlock()
	select {
	case tf.changed <- struct{}{}:
	default:
	}
}

// take returns the changes to send and forgets them; busy until the
// next take.
func (tf *topicFrames) take() (order []string, want map[string]bool) {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	order, want = tf.order, tf.want
	if len(order) > 0 {
		tf.order, tf.want = nil, map[string]bool{}
	}
	tf.busy = len(order) > 0
	return order, want
}

// topicFrame is a subscribe or unsubscribe frame.
func topicFrame(topic string, subscribe bool) *socketv1.ConnectRequest {
	if subscribe {
		return &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Subscribe{Subscribe: &socketv1.Subscribe{Topic: topic}}}
	}
	return &socketv1.ConnectRequest{Frame: &socketv1.ConnectRequest_Unsubscribe{Unsubscribe: &socketv1.Unsubscribe{Topic: topic}}}
}

// sendTopics sends the stream's (un)subscribe frames as they are set,
// until the stream ends.
func (st *clientStream) sendTopics() {
	tf := &st.topics
	for {
		order, want := tf.take()
		for _, t := range order {
			st.sendFrame(topicFrame(t, want[t]))
		}
		if len(order) > 0 {
			continue // take again: clears busy, or sends what came meanwhile
		}
		s, changed := st.observe()
		if s >= streamDrained {
			return
		}
		select {
		case <-tf.changed:
		case <-changed:
		}
	}
}

// sendFrame queues a frame that answers nothing (subscribe, unsubscribe)
// for the stream's sender, waiting while the queue is full; a frame for a
// stream that ended is dropped. Only sendTopics calls it.
func (st *clientStream) sendFrame(f *socketv1.ConnectRequest) {
	st.unsent.Add(1)
	for {
		s, changed := st.observe()
		if s >= streamDrained {
			st.unsent.Add(-1)
			return
		}
		select {
		case st.sendq <- outgoing{frame: f}:
			return
		case <-changed:
		}
	}
}
