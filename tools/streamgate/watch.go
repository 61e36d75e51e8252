package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"sync"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// watchLine is one line `call -watch` prints: an event, in the WebSocket
// endpoint's event frame shape, or a gap when a stream to an instance
// broke ("type":"gap", no seq or data).
type watchLine struct {
	Type  string          `json:"type"`
	Topic string          `json:"topic"`
	Seq   uint64          `json:"seq,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	// Gap: events may be missing before this one.
	Gap        bool               `json:"gap,omitempty"`
	Visibility *socket.Visibility `json:"visibility,omitempty"`
}

// timeoutSet reports whether -timeout was given: -watch runs until
// interrupted unless it was.
func timeoutSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "timeout" })
	return set
}

// watchService subscribes to topic (or a pattern) on every instance at
// target and prints one JSON line per event until ctx ends.
func watchService(ctx context.Context, target, key, topic string, stdout io.Writer) error {
	c, err := caller.Dial(target, caller.WithKey(key))
	if err != nil {
		return err
	}
	defer c.Close()
	var mu sync.Mutex // guards enc (events and the end)
	enc := json.NewEncoder(stdout)
	var werr error
	stop, err := c.Subscribe(ctx, topic, func(e caller.Event) {
		l := watchLine{Type: "event", Topic: e.Topic, Seq: e.Seq, Data: e.Data, Gap: e.Gap, Visibility: &e.Visibility}
		if e.Data == nil {
			l = watchLine{Type: "gap", Topic: e.Topic}
		}
		mu.Lock()
		defer mu.Unlock()
		if werr == nil {
			werr = enc.Encode(l)
		}
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	mu.Lock()
	defer mu.Unlock()
	return werr
}
