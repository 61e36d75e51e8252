// Package events lets the shop's services publish the state of an object
// after each change, so subscribers (the gateway's cache and its WebSocket
// clients) see every change, including those made without the gateway.
//
//	pub := events.New(srv)
//	// after a change of item 42 is stored:
//	pub.Changed(ctx, "items", "42", socket.Visibility{Public: true}, func(ctx context.Context) (any, bool, error) {
//		it, err := st.Get(ctx, "42")
//		if errors.Is(err, ErrNotFound) {
//			return nil, false, nil // published as {"id": "42", "deleted": true}
//		}
//		return it, err == nil, err
//	})
package events

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/streamgate/streamgate/services/socket"
)

// loadTimeout bounds reading an object's state after its change.
const loadTimeout = 5 * time.Second

// Publisher publishes objects' states on "{resource}/{id}" topics.
type Publisher struct {
	srv  *socket.Server
	seed maphash.Seed
	// locks order load and publish per object (striped by topic): an
	// event published later never carries an older state than one
	// published before it (within this process).
	locks [64]sync.Mutex
}

// New returns a Publisher publishing on srv; nil srv publishes nothing.
func New(srv *socket.Server) *Publisher { return &Publisher{srv: srv, seed: maphash.MakeSeed()} }

// Deleted is the data of an event about an object that no longer exists.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

// Changed publishes the object's state as load reads it now (what a read
// of it returns) on resource/id; when load reports found false, a Deleted.
// A change already stored cannot be undone, so the event goes out even
// when ctx has ended; load failing publishes nothing.
func (p *Publisher) Changed(ctx context.Context, resource, id string, vis socket.Visibility, load func(context.Context) (v any, found bool, err error)) {
	if p == nil || p.srv == nil || id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
	defer cancel()
	topic := resource + "/" + id
	mu := &p.locks[maphash.String(p.seed, topic)%uint64(len(p.locks))]
	mu.Lock()
	defer mu.Unlock()
	v, found, err := load(ctx)
	if err != nil {
		return
	}
	if !found {
		v = Deleted{ID: id, Deleted: true}
	}
	_ = p.srv.Publish(topic, v, vis) // ids are checked where they are made
}

// Owner is the visibility of a user's object: its owner and admins.
func Owner(userID string) socket.Visibility {
	return socket.Visibility{Subjects: []string{userID}, Roles: []string{socket.RoleAdmin}}
}

// Get adapts a store's getter to Changed's load: notFound is the store's
// error for a missing object.
func Get[T any](get func(ctx context.Context, id string) (T, error), id string, notFound error) func(context.Context) (any, bool, error) {
	return func(ctx context.Context) (any, bool, error) {
		v, err := get(ctx, id)
		switch {
		case errors.Is(err, notFound):
			return nil, false, nil
		case err != nil:
			return nil, false, err
		}
		return v, true, nil
	}
}
