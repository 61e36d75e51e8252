package faults_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fleetLoad is steady, bounded load through every gateway of a fleet, as
// clients behind a load balancer send it: reads of one item (past the
// gateway's cache), and creates
// of items, each with an Idempotency-Key and sent again with the same key
// until answered 201. A client whose gateway refuses or drops its
// connection sends to the next gateway.
type fleetLoad struct {
	f       *fleet
	item    string // the id read
	prefix  string // of the created items' names
	retry   bool   // reads answered 503 are sent again, as writes are
	reads   tally  // every read's answers, resent ones too
	writes  tally  // every create's answers, resent ones too
	moved   atomic.Int64
	reasons sync.Map // "STATUS reason" → *atomic.Int64, of every 5xx
	// readsResent and createsResent count requests sent again after a
	// 503, 504 or 409; lostReads and lostCreates those never answered
	// 200 or 201 within loadDeadline.
	readsResent, createsResent atomic.Int64
	lostReads, lostCreates     atomic.Int64
	created                    sync.Map // name → true, once answered 201
}

// note records an answer's 5xx status and reason.
func (l *fleetLoad) note(r reply, err error) {
	if err != nil || r.Status < 500 {
		return
	}
	n, _ := l.reasons.LoadOrStore(fmt.Sprintf("%d %s", r.Status, r.Reason()), new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

// newFleetLoad creates the item to read through the first gateway.
func (f *fleet) newFleetLoad(t *testing.T, prefix string) *fleetLoad {
	t.Helper()
	c := &cluster{rest: f.gateways[0].rest}
	return &fleetLoad{f: f, item: c.newItem(t, prefix+"-read-me", 100, 10).ID, prefix: prefix}
}

// send sends one request through the worker's gateway, moving to the next
// one while a gateway refuses or drops the connection.
func (l *fleetLoad) send(worker int, cred, method, path string, body any, header ...string) (reply, error) {
	var err error
	for attempt := range 2 * len(l.f.gateways) {
		g := l.f.gateways[(worker+attempt)%len(l.f.gateways)]
		var r reply
		if r, err = g.rest.Do(cred, method, path, body, header...); err == nil {
			return r, nil
		}
		l.moved.Add(1)
	}
	return reply{}, err
}

// loadDeadline bounds how long one client request is sent again.
const loadDeadline = 20 * time.Second

// read reads the item; with retry set, a 503 is sent again within
// loadDeadline.
func (l *fleetLoad) read(worker int) {
	until := time.Now().Add(loadDeadline)
	for {
		// Past the gateway's cache: every read reaches an instance.
		r, err := l.send(worker, adminKey, "GET", "/v1/items/"+l.item, nil, "Cache-Control", "no-cache")
		l.reads.add(r, err)
		l.note(r, err)
		if err != nil || r.Status != http.StatusServiceUnavailable || !l.retry {
			return
		}
		if time.Now().After(until) {
			l.lostReads.Add(1)
			return
		}
		l.readsResent.Add(1)
		<-time.After(50 * time.Millisecond) // a client's backoff
	}
}

// create creates item n with its own Idempotency-Key, sending it again
// with that key after a 503, a 504, a 409 (the key in use) or a dropped
// connection, within loadDeadline.
func (l *fleetLoad) create(worker, n int) {
	name := fmt.Sprintf("%s-%d", l.prefix, n)
	key := newKey()
	until := time.Now().Add(loadDeadline)
	for time.Now().Before(until) {
		r, err := l.send(worker, adminKey, "POST", "/v1/items", map[string]any{"name": name, "price_cents": 1, "stock": 1}, "Idempotency-Key", key)
		l.writes.add(r, err)
		l.note(r, err)
		if err == nil && r.Status == http.StatusCreated {
			l.created.Store(name, true)
			return
		}
		if err == nil && r.Status != http.StatusServiceUnavailable && r.Status != http.StatusGatewayTimeout && r.Status != http.StatusConflict {
			return // a definite refusal: the tally shows it
		}
		l.createsResent.Add(1)
		<-time.After(50 * time.Millisecond) // a client's backoff
	}
	l.lostCreates.Add(1)
}

// run sends reads reads and writes creates, fault happening once a third
// of the reads are done, and returns when all are answered.
func (l *fleetLoad) run(reads, writes int, fault func()) {
	faulted := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		load(8, reads, time.Minute, func(i int) {
			if i == reads/3 {
				close(faulted)
			}
			l.read(i)
		})
	})
	wg.Go(func() {
		load(4, writes, time.Minute, func(i int) { l.create(i, i) })
	})
	<-faulted
	fault()
	wg.Wait()
}

// String sums the load up for the test's log (RELIABILITY.md's figures).
func (l *fleetLoad) String() string {
	var reasons []string
	l.reasons.Range(func(k, v any) bool {
		reasons = append(reasons, fmt.Sprintf("%s ×%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(reasons)
	return fmt.Sprintf("reads: %s, resent %d, never 200 %d; creates: %s, resent %d, never 201 %d; moved to the other gateway %d; 5xx: %v",
		&l.reads, l.readsResent.Load(), l.lostReads.Load(), &l.writes, l.createsResent.Load(), l.lostCreates.Load(), l.moved.Load(), reasons)
}

// appliedOnce fails the test unless every create the load sent is stored
// at most once, and every one answered 201 exactly once.
func (l *fleetLoad) appliedOnce(t *testing.T) {
	t.Helper()
	c := &cluster{rest: l.f.gateways[len(l.f.gateways)-1].rest}
	names := c.itemNames(t)
	stored := 0
	for name, n := range names {
		if !strings.HasPrefix(name, l.prefix+"-") || strings.HasSuffix(name, "-read-me") {
			continue
		}
		stored++
		if n > 1 {
			t.Errorf("create %s applied %d times", name, n)
		}
	}
	answered := 0
	l.created.Range(func(k, _ any) bool {
		answered++
		if names[k.(string)] != 1 {
			t.Errorf("create %s answered 201 but is stored %d times", k, names[k.(string)])
		}
		return true
	})
	t.Logf("creates: %d answered 201, %d stored", answered, stored)
	if n := l.lostCreates.Load(); n > 0 {
		t.Errorf("%d creates never answered 201 within %v", n, loadDeadline)
	}
	if n := l.lostReads.Load(); n > 0 {
		t.Errorf("%d reads never answered 200 within %v", n, loadDeadline)
	}
}
