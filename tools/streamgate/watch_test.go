package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

func TestCallWatchPrintsEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	target := runService(t, ctx, run.Options{Service: "inventory", Store: run.StoreMemory, Keys: []keyring.Key{{Name: "cli", Secret: "k", Roles: []string{"admin"}}}})

	out, w := io.Pipe()
	watchCtx, stopWatch := context.WithCancel(ctx)
	status := make(chan int, 1)
	go func() {
		status <- dispatch(watchCtx, []string{"call", "-addr", target, "-key", "k", "-watch", "items/*"}, w, io.Discard)
		_ = w.Close()
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()

	c, err := caller.Dial(target, caller.WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Request(ctx, "CREATE_ITEM", "", map[string]any{"id": "pen", "name": "Pen", "price_cents": 100, "stock": 1}); err != nil {
		t.Fatal(err)
	}
	// The watch may subscribe after that write: change the price until its
	// event is printed.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	price := 100
	var line string
	for line == "" {
		select {
		case line = <-lines:
		case <-tick.C:
			price++
			if _, err := c.Request(ctx, "UPDATE_ITEM", "pen", map[string]any{"price_cents": price}); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("call -watch printed nothing")
		}
	}
	var got struct {
		Type, Topic string
		Seq         uint64
		Data        struct {
			ID         string `json:"id"`
			PriceCents int    `json:"price_cents"`
		}
		Visibility socket.Visibility
	}
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if got.Type != "event" || got.Topic != "items/pen" || got.Seq == 0 || got.Data.ID != "pen" || got.Data.PriceCents < 100 || !got.Visibility.Public {
		t.Fatalf("line %s", line)
	}
	stopWatch() // as Ctrl-C does
	go func() {
		for range lines { // drain
		}
	}()
	if s := <-status; s != 0 {
		t.Fatalf("status %d after the interrupt, want 0", s)
	}
}
