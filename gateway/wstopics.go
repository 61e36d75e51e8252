package gateway

import (
	"net/http"

	"github.com/streamgate/streamgate/services/socket"
)

// topicFrame serves subscribe and unsubscribe frames.
// TODO(events): subscriptions need the events hub (branch events).
func (c *wsConn) topicFrame(f *clientFrame) {
	c.send(responseFrame(f.ID, answer{status: http.StatusUnprocessableEntity, err: socket.Errorf(socket.CodeNotSupported, "subscriptions are not available on this gateway yet")}))
}

// stopTopics ends the socket's subscriptions.
func (c *wsConn) stopTopics() {}
