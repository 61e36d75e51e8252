// Package eventlog keeps the events of topics in JetStream, so that every
// reader sees a topic's events in the same order with the same seqs, and
// a reader that was away resumes from the last seq it saw.
//
//	js, _ := jetstream.New(nc)
//	l, err := eventlog.Open(ctx, js, []eventlog.Window{{Prefix: "orders", MaxAge: time.Hour}})
//	seq, err := l.Publish(ctx, "orders/o1", data, "pay-o1-7") // the id de-duplicates retries
//	start, stop, err := l.Watch(ctx, "orders/o1", eventlog.Position{Epoch: epoch, Seq: last}, deliver)
//	defer stop()
//	if !start.Recovered { /* refetch; events follow start.Seq */ }
//
// # Subjects and streams
//
// A topic (docs/protocol.md §3.4: segments separated by "/", no "*" or
// whitespace) is the subject of the root ("streamgate.events" unless
// WithRoot says otherwise) followed by one token per segment:
// "orders/o1" is "streamgate.events.orders.o1". A byte a subject token
// cannot hold literally — ".", "*", ">", whitespace and control bytes —
// and "%" itself are written "%" and two hex digits ("orders/o.1" is
// "…orders.o%2E1"), so two topics never share a subject.
//
// Each Window (a topic prefix of whole segments, with a maximum age and
// size) is one stream holding the subjects of its prefix, named from the
// root and the prefix ("STREAMGATE_EVENTS_orders"); Open creates or
// updates them, so opening again changes nothing. Windows may not
// overlap, and a topic under no window is refused: every event has one
// stream and one history.
//
// # Seqs and epochs
//
// The seq a reader sees is the event's sequence in its stream, not a
// count per topic: it grows with every event of the topic, with gaps
// where the window's other topics' events fall. JetStream gives it to
// every reader alike without any coordination between them, and it is
// what a consumer starts from, so resuming after seq N is exact; a dense
// count per topic would need a second record kept beside the stream, and
// could not be recovered once the window dropped the events that made it.
// A reader must therefore treat a jump in seq as normal; whether events
// were lost is what Start.Recovered says.
//
// The epoch is the stream's creation time, kept by JetStream across
// restarts of its servers: deleting and making the stream again starts
// its seqs again at 1 and changes the epoch, so a seq of the old stream
// is never taken for one of the new. A topic watched while its stream is
// deleted ends its watches with an Ended event (the consumer's loss
// prompts a check of the epoch); the watchers then watch again.
//
// # Watching
//
// Watch decides from one read of the stream's state: the same epoch and
// every event after the Position's seq still held (limits retention only
// drops events from the front, so the stream's first seq tells) →
// recovered, every event after it then the live ones; otherwise not
// recovered, with the stream's last seq as the current one, and the
// events after it.
//
// A Log watches a topic with one ordered consumer (in memory, no acks,
// made again by the client library after a gap or a reconnect from the
// last event it delivered, so a NATS restart loses nothing), shared by
// all of the Log's watchers of the topic and deleted when the last
// leaves. The first watcher starts it where it decided. A later watcher
// attaches first, holding the live events, then decides, then reads the
// events the consumer had passed before it attached one by one (a direct
// read of the next event of the subject), then hands over the held
// events after those and goes live: each event once, in order, with no
// second consumer. A resume on a topic nobody else watches on this Log
// has the consumer read the missed events instead, in batches.
package eventlog
