package eventlog_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/streamgate/streamgate/internal/eventlog"
)

// A reader that saw an order's first event comes back with its position:
// it gets the two events it missed (then, as they come, the live ones).
func ExampleLog_Watch() {
	dir, _ := os.MkdirTemp("", "eventlog-example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	ns.Start()
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	ns.ReadyForConnections(10 * time.Second)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	l, err := eventlog.Open(ctx, js, []eventlog.Window{{Prefix: "orders", MaxBytes: 1 << 20}})
	if err != nil {
		fmt.Println(err)
		return
	}
	epoch, _ := l.Epoch(ctx, "orders/o1")
	seen, _ := l.Publish(ctx, "orders/o1", []byte(`{"status":"created"}`), "")
	_, _ = l.Publish(ctx, "orders/o1", []byte(`{"status":"paid"}`), "")
	last, _ := l.Publish(ctx, "orders/o1", []byte(`{"status":"shipped"}`), "")

	got := make(chan eventlog.Event, 8)
	start, stop, err := l.Watch(ctx, "orders/o1", eventlog.Position{Epoch: epoch, Seq: seen}, func(e eventlog.Event) { got <- e })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	fmt.Println("recovered:", start.Recovered, "after seq", start.Seq)
	for e := range got {
		fmt.Println(e.Seq, string(e.Data))
		if e.Seq == last {
			break
		}
	}
	// Output:
	// recovered: true after seq 1
	// 2 {"status":"paid"}
	// 3 {"status":"shipped"}
}
