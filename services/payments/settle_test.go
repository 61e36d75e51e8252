package payments_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
)

// TestSettle leaves payments in every uncertain state a fault can leave
// them in, over a real socket and real sandboxes, and settles them with
// SETTLE_PAYMENTS, once per store.
func TestSettle(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			st := kind.open(t)
			e := newEnv(t, st)

			// The gateway charged but its answer was lost: PAY failed.
			_, err := e.pay(alice, payments.PayInput{OrderID: "ord_lost", AmountCents: 1500, Gateway: "A", Card: cardLost})
			lost, _ := wantCode(t, err, socket.CodeDeadlineExceeded, "provider_timeout").Details["payment_id"].(string)
			if e.sandboxes["A"].Taken()[lost] != 1500 {
				t.Fatalf("the sandbox did not take the money of %s: %v", lost, e.sandboxes["A"].Taken())
			}
			// The gateway never answered and never charged.
			_, err = e.pay(alice, payments.PayInput{OrderID: "ord_hung", AmountCents: 700, Gateway: "A", Card: cardHangs})
			hung, _ := wantCode(t, err, socket.CodeDeadlineExceeded, "provider_timeout").Details["payment_id"].(string)
			// The process stopped after recording a payment: once after the
			// charge went out (and was made), once before.
			crashed := func(id, order string, age time.Duration) payments.Payment {
				p := payments.Payment{ID: id, OrderID: order, UserID: "alice", AmountCents: 2500, Gateway: "B",
					Status: payments.StatusPending, CardLast4: "0259", CreatedAt: time.Unix(time.Now().Add(-age).Unix(), 0).UTC()}
				if err := st.Create(e.ctx, p); err != nil {
					t.Fatal(err)
				}
				return p
			}
			charged := crashed("pay_crash_charged", "ord_crash_charged", time.Hour)
			if _, err := e.providers["B"].Charge(e.ctx, payments.Charge{AmountCents: 2500, Card: cardLost, Reference: charged.ID}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("lost charge: %v", err)
			}
			notCharged := crashed("pay_crash_none", "ord_crash_none", time.Hour)
			young := crashed("pay_young", "ord_young", 0)
			// The stopped payment still holds its order.
			_, err = e.pay(alice, payments.PayInput{OrderID: notCharged.OrderID, AmountCents: 2500, Gateway: "B", Card: cardOK})
			wantCode(t, err, socket.CodeConflict, "payment_in_progress")

			want := map[string]payments.Settlement{
				lost:          {From: payments.StatusFailed, To: payments.StatusRefunded, Action: payments.SettleRefunded, Reason: "provider_timeout"},
				charged.ID:    {From: payments.StatusPending, To: payments.StatusSucceeded, Action: payments.SettleCharged, Reason: "pending"},
				notCharged.ID: {From: payments.StatusPending, To: payments.StatusFailed, Action: payments.SettleNotCharged, Reason: "pending"},
			}
			// A dry run says what a pass would do and does nothing.
			ms := time.Minute.Milliseconds()
			dry, err := socketcaller.Call[payments.SettleReport](e.as(admin), e.c, "SETTLE_PAYMENTS", "", payments.SettleInput{OlderThanMS: &ms, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			checkSettled(t, dry, want)
			if got := e.get(admin, charged.ID); got.Status != payments.StatusPending || e.sandboxes["A"].Refunds() != 0 {
				t.Fatalf("the dry run changed %+v", got)
			}
			rep := e.settle(admin, time.Minute)
			checkSettled(t, rep, want)
			if got := e.get(admin, lost); got.Status != payments.StatusRefunded || got.ProviderRef == "" {
				t.Fatalf("lost payment: %+v", got)
			}
			if got := e.get(admin, charged.ID); got.Status != payments.StatusSucceeded || got.ProviderRef != rep.Settled[indexOf(rep, charged.ID)].ProviderRef {
				t.Fatalf("charged crash: %+v", got)
			}
			if got := e.get(admin, notCharged.ID); got.Status != payments.StatusFailed || got.FailureReason != payments.ReasonNotCharged {
				t.Fatalf("uncharged crash: %+v", got)
			}
			for id, status := range map[string]payments.Status{hung: payments.StatusFailed, young.ID: payments.StatusPending} {
				if got := e.get(admin, id); got.Status != status {
					t.Fatalf("%s was settled before the cut-off: %+v", id, got)
				}
			}
			if e.sandboxes["A"].Refunds() != 1 {
				t.Fatalf("%d refunds at A, want 1", e.sandboxes["A"].Refunds())
			}
			// The order the stopped payment held can be paid now.
			if _, err := e.pay(alice, payments.PayInput{OrderID: notCharged.OrderID, AmountCents: 2500, Gateway: "B", Card: cardOK}); err != nil {
				t.Fatalf("paying the released order: %v", err)
			}

			checkSettled(t, e.settle(admin, time.Minute), nil)
			// Past the cut-off, what was never charged is confirmed so.
			rep = e.settle(admin, 0)
			checkSettled(t, rep, map[string]payments.Settlement{
				hung:     {From: payments.StatusFailed, To: payments.StatusFailed, Action: payments.SettleNotCharged, Reason: "provider_timeout"},
				young.ID: {From: payments.StatusPending, To: payments.StatusFailed, Action: payments.SettleNotCharged, Reason: "pending"},
			})
			checkSettled(t, e.settle(admin, 0), nil)
			e.moneyMatches(st)

			_, err = socketcaller.Call[payments.SettleReport](e.as(alice), e.c, "SETTLE_PAYMENTS", "", payments.SettleInput{})
			wantCode(t, err, socket.CodePermissionDenied, "")
			neg := int64(-1)
			_, err = socketcaller.Call[payments.SettleReport](e.as(admin), e.c, "SETTLE_PAYMENTS", "", payments.SettleInput{OlderThanMS: &neg})
			wantCode(t, err, socket.CodeInvalidArgument, "")
		})
	}
}

// A gateway that does not answer leaves the payment for a later pass.
func TestSettleGatewayDown(t *testing.T) {
	t.Parallel()
	st := payments.NewMemoryStore()
	sb, prov := startSandbox(t, "A", 0, providerTimeout, testHTTPClient(t))
	ctx := context.Background()
	p := payments.Payment{ID: "pay_1", OrderID: "ord_1", UserID: "alice", AmountCents: 100, Gateway: "A", Status: payments.StatusPending, CreatedAt: time.Now().Add(-time.Hour)}
	if err := st.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	sb.Close()
	providers := map[string]payments.Provider{"A": prov}
	rep, err := payments.Settle(ctx, st, providers, time.Minute, time.Now())
	if err != nil || len(rep.Settled) != 0 || len(rep.Unresolved) != 1 || rep.Unresolved[0] != (payments.Unresolved{PaymentID: "pay_1", OrderID: "ord_1", Gateway: "A", Reason: "lookup_failed"}) {
		t.Fatalf("got %+v %v", rep, err)
	}
	rep, err = payments.Settle(ctx, st, nil, time.Minute, time.Now())
	if err != nil || len(rep.Unresolved) != 1 || rep.Unresolved[0].Reason != "gateway_not_configured" {
		t.Fatalf("got %+v %v", rep, err)
	}
	if got, _ := st.Get(ctx, "pay_1"); got.Status != payments.StatusPending {
		t.Fatalf("payment %+v", got)
	}
}

// SettleEvery settles on its own and stops when its context ends.
func TestSettleEveryStopsWithItsContext(t *testing.T) {
	t.Parallel()
	st := payments.NewMemoryStore()
	_, prov := startSandbox(t, "A", 0, providerTimeout, testHTTPClient(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := payments.Payment{ID: "pay_1", OrderID: "ord_1", UserID: "alice", AmountCents: 100, Gateway: "A", Status: payments.StatusPending, CreatedAt: time.Now().Add(-time.Hour)}
	if err := st.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	logged := make(chan slog.Record, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		payments.SettleEvery(ctx, st, map[string]payments.Provider{"A": prov}, time.Millisecond, time.Minute, slog.New(recordHandler(logged)))
	}()
	select {
	case r := <-logged:
		if r.Message != "settled payment" {
			t.Fatalf("logged %q", r.Message)
		}
	case <-time.After(testDeadline):
		t.Fatal("no pass settled the payment")
	}
	if got, _ := st.Get(ctx, "pay_1"); got.Status != payments.StatusFailed || got.FailureReason != payments.ReasonNotCharged {
		t.Fatalf("payment %+v", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(testDeadline):
		t.Fatal("SettleEvery did not stop with its context")
	}
}

// recordHandler is a slog.Handler that sends every record to ch, dropping
// those it has no room for.
type recordHandler chan<- slog.Record

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func (e *env) settle(c caller, olderThan time.Duration) payments.SettleReport {
	e.t.Helper()
	ms := olderThan.Milliseconds()
	rep, err := socketcaller.Call[payments.SettleReport](e.as(c), e.c, "SETTLE_PAYMENTS", "", payments.SettleInput{OlderThanMS: &ms})
	if err != nil {
		e.t.Fatalf("SETTLE_PAYMENTS: %v", err)
	}
	return rep
}

// checkSettled compares a report's settlements (from, to, action and
// reason) with want, by payment id; it fails on anything unresolved.
func checkSettled(t *testing.T, rep payments.SettleReport, want map[string]payments.Settlement) {
	t.Helper()
	if len(rep.Unresolved) != 0 {
		t.Fatalf("unresolved: %+v", rep.Unresolved)
	}
	if len(rep.Settled) != len(want) {
		t.Fatalf("settled %+v, want %d", rep.Settled, len(want))
	}
	for _, s := range rep.Settled {
		w, ok := want[s.PaymentID]
		if !ok || s.From != w.From || s.To != w.To || s.Action != w.Action || s.Reason != w.Reason || s.OrderID == "" || s.Gateway == "" {
			t.Fatalf("settled %+v, want %+v", s, w)
		}
		if (s.ProviderRef != "") != (s.Action != payments.SettleNotCharged) {
			t.Fatalf("settled %+v: provider_ref", s)
		}
	}
}

func indexOf(rep payments.SettleReport, id string) int {
	for i, s := range rep.Settled {
		if s.PaymentID == id {
			return i
		}
	}
	return -1
}

// moneyMatches fails unless the money the sandboxes hold is exactly the
// succeeded payments: same references, same amounts.
func (e *env) moneyMatches(st payments.Store) {
	e.t.Helper()
	taken := map[string]int64{}
	for _, sb := range e.sandboxes {
		for ref, amount := range sb.Taken() {
			taken[ref] = amount
		}
	}
	paid, err := st.List(e.ctx, payments.Filter{Status: payments.StatusSucceeded})
	if err != nil {
		e.t.Fatal(err)
	}
	if len(paid) != len(taken) {
		e.t.Fatalf("%d succeeded payments, %d charges held: %v", len(paid), len(taken), taken)
	}
	for _, p := range paid {
		if taken[p.ID] != p.AmountCents {
			e.t.Fatalf("payment %s of %d: the gateway holds %d", p.ID, p.AmountCents, taken[p.ID])
		}
	}
}
