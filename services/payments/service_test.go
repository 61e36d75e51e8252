package payments_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

// TestService runs the service over a real socket against real sandbox
// gateways, once per store. Subtests share the environment and run in
// order, so sandbox counts can be compared before and after each step.
func TestService(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind.open(t))
			t.Run("cards", func(t *testing.T) { testCards(t, e) })
			t.Run("declined then paid", func(t *testing.T) { testDeclinedThenPaid(t, e) })
			t.Run("versions", func(t *testing.T) { testVersions(t, e) })
			t.Run("validation", func(t *testing.T) { testValidation(t, e) })
			t.Run("charged once", func(t *testing.T) { testChargedOnce(t, e) })
			t.Run("idempotency key", func(t *testing.T) { testIdempotency(t, e) })
			t.Run("refund then pay again", func(t *testing.T) { testRefund(t, e) })
			t.Run("nothing to charge", func(t *testing.T) { testNothingToCharge(t, e) })
			t.Run("reads", func(t *testing.T) { testReads(t, e) })
		})
	}
}

func testCards(t *testing.T, e *env) {
	tests := []struct {
		name       string
		card       string
		code       status.Code
		refusal    bool // the reason is one of PaymentRefusals (a gateway answers 402)
		reason     string
		wantStatus payments.Status
	}{
		{"approved", cardOK, "", false, "", payments.StatusSucceeded},
		{"declined", cardDeclined, socket.CodeFailedPrecondition, true, "card_declined", payments.StatusFailed},
		{"unknown card", cardUnknown, socket.CodeFailedPrecondition, true, "invalid_card", payments.StatusFailed},
		{"gateway timeout", cardHangs, socket.CodeDeadlineExceeded, false, "provider_timeout", payments.StatusFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			order := "ord_cards_" + strings.ReplaceAll(tt.name, " ", "_")
			before := e.charges()
			start := time.Now()
			p, err := e.pay(alice, payments.PayInput{OrderID: order, AmountCents: 1999, Gateway: "B", Card: tt.card})
			if n := e.newCharges(before); n != 1 || e.sandboxes["B"].Charges()-before["B"] != 1 {
				t.Fatalf("%d charges, want 1 at gateway B", n)
			}
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else {
				se := wantCode(t, err, tt.code, tt.reason)
				if slices.Contains(payments.PaymentRefusals(), tt.reason) != tt.refusal {
					t.Fatalf("reason %q: a payment refusal is %v, want %v", tt.reason, !tt.refusal, tt.refusal)
				}
				id, _ := se.Details["payment_id"].(string)
				p = e.get(alice, id)
				if p.FailureReason != tt.reason {
					t.Fatalf("failure_reason %q, want %q", p.FailureReason, tt.reason)
				}
			}
			if d := time.Since(start); d > 10*providerTimeout {
				t.Fatalf("PAY took %v", d)
			}
			if p.Status != tt.wantStatus || p.OrderID != order || p.UserID != "alice" || p.CardLast4 != tt.card[12:] || p.Gateway != "B" || p.AmountCents != 1999 {
				t.Fatalf("payment %+v", p)
			}
			if (p.ProviderRef != "") != (tt.wantStatus == payments.StatusSucceeded) {
				t.Fatalf("provider_ref %q with status %s", p.ProviderRef, p.Status)
			}
			if got := e.get(admin, p.ID); got.Status != tt.wantStatus {
				t.Fatalf("stored status %s, want %s", got.Status, tt.wantStatus)
			}
		})
	}
}

func testDeclinedThenPaid(t *testing.T, e *env) {
	in := payments.PayInput{OrderID: "ord_retry", AmountCents: 500, Gateway: "A", Card: cardDeclined}
	_, err := e.pay(alice, in)
	wantCode(t, err, socket.CodeFailedPrecondition, "card_declined")
	_, err = e.pay(alice, payments.PayInput{OrderID: "ord_retry", AmountCents: 500, Gateway: "A", Card: cardHangs})
	wantCode(t, err, socket.CodeDeadlineExceeded, "provider_timeout")
	in.Card = cardOK
	p, err := e.pay(alice, in)
	if err != nil || p.Status != payments.StatusSucceeded {
		t.Fatalf("good card after failures: %+v %v", p, err)
	}
	page, err := socketcaller.Call[payments.Page](e.as(admin), e.c, "LIST_PAYMENTS", "", payments.ListInput{OrderID: "ord_retry"})
	if err != nil {
		t.Fatal(err)
	}
	var statuses []payments.Status
	for _, p := range page.Items {
		statuses = append(statuses, p.Status)
	}
	slices.Sort(statuses)
	if fmt.Sprint(statuses) != "[failed failed succeeded]" {
		t.Fatalf("statuses %v", statuses)
	}
}

func testVersions(t *testing.T, e *env) {
	tests := []struct {
		version, gateway string
		ok               bool
		supported        []any
	}{
		{"v1", "A", true, nil},
		{"v1", "B", false, []any{"A"}},
		{"v1", "C", false, []any{"A"}},
		{"v2", "A", true, nil},
		{"v2", "B", true, nil},
		{"v2", "C", true, nil},
		{"v3", "A", true, nil},
		{"v3", "B", true, nil},
		{"v3", "C", false, []any{"A", "B"}},
		{"v2", "Z", false, []any{"A", "B", "C"}},
		{"v9", "A", false, []any{}},
		{"", "A", false, []any{}},
	}
	for i, tt := range tests {
		t.Run(tt.version+"_"+tt.gateway, func(t *testing.T) {
			before := e.charges()
			c := caller{version: tt.version, subject: "alice"}
			p, err := e.pay(c, payments.PayInput{OrderID: fmt.Sprintf("ord_version_%d", i), AmountCents: 100, Gateway: tt.gateway, Card: cardOK})
			if tt.ok {
				if err != nil || p.Status != payments.StatusSucceeded || p.Gateway != tt.gateway {
					t.Fatalf("got %+v %v", p, err)
				}
				if e.sandboxes[tt.gateway].Charges()-before[tt.gateway] != 1 {
					t.Fatalf("gateway %s was not charged", tt.gateway)
				}
				return
			}
			se := wantCode(t, err, socket.CodeNotSupported, "")
			if fmt.Sprint(se.Details["supported"]) != fmt.Sprint(tt.supported) || se.Details["gateway"] != tt.gateway || se.Details["version"] != tt.version {
				t.Fatalf("details %v", se.Details)
			}
			if !strings.Contains(se.Message, tt.gateway) {
				t.Fatalf("message %q does not name the gateway", se.Message)
			}
			if tt.version == "" && !strings.Contains(se.Message, "version is required") {
				t.Fatalf("message %q", se.Message)
			}
			if tt.version != "" && !strings.Contains(se.Message, tt.version) {
				t.Fatalf("message %q does not name the version", se.Message)
			}
			if n := e.newCharges(before); n != 0 {
				t.Fatalf("%d charges for an unsupported gateway", n)
			}
		})
	}
	if fmt.Sprint(payments.Supported("v3")) != "[A B]" || payments.Supported("v4") != nil {
		t.Fatal("Supported")
	}
}

func testValidation(t *testing.T, e *env) {
	good := payments.PayInput{OrderID: "ord_valid", AmountCents: 100, Gateway: "A", Card: cardOK}
	tests := []struct {
		name  string
		as    caller
		id    string
		edit  func(*payments.PayInput)
		code  status.Code
		field string
	}{
		{"no order", alice, "", func(in *payments.PayInput) { in.OrderID = "" }, socket.CodeInvalidArgument, "order_id"},
		{"order and id differ", alice, "ord_other", nil, socket.CodeInvalidArgument, "order_id"},
		{"negative amount", alice, "", func(in *payments.PayInput) { in.AmountCents = -5 }, socket.CodeInvalidArgument, "amount_cents"},
		{"no gateway", alice, "", func(in *payments.PayInput) { in.Gateway = "" }, socket.CodeInvalidArgument, "gateway"},
		{"no card", alice, "", func(in *payments.PayInput) { in.Card = "" }, socket.CodeInvalidArgument, "card"},
		{"short card", alice, "", func(in *payments.PayInput) { in.Card = "4242" }, socket.CodeInvalidArgument, "card"},
		{"card with dashes", alice, "", func(in *payments.PayInput) { in.Card = "4242-4242-4242-4242" }, socket.CodeInvalidArgument, "card"},
		{"card with letters", alice, "", func(in *payments.PayInput) { in.Card = "42424242424242ab" }, socket.CodeInvalidArgument, "card"},
		{"for someone else", alice, "", func(in *payments.PayInput) { in.UserID = "bob" }, socket.CodePermissionDenied, ""},
		{"anonymous", caller{version: "v2"}, "", nil, socket.CodeUnauthenticated, ""},
	}
	before := e.charges()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			if tt.edit != nil {
				tt.edit(&in)
			}
			_, err := socketcaller.Call[payments.Payment](e.as(tt.as), e.c, "PAY", tt.id, in)
			se := wantCode(t, err, tt.code, "")
			if tt.field != "" && se.Details["field"] != tt.field {
				t.Fatalf("details %v, want field %s", se.Details, tt.field)
			}
		})
	}
	_, err := e.c.Request(e.as(alice), "PAY", "", map[string]any{"order_id": "ord_valid", "amount_cents": 1, "gateway": "A", "card": cardOK, "cvv": "123"})
	wantCode(t, err, socket.CodeInvalidArgument, "")
	// A missing amount is not 0: 0 is an amount, nothing to charge.
	_, err = e.c.Request(e.as(alice), "PAY", "", map[string]any{"order_id": "ord_valid", "gateway": "A", "card": cardOK})
	if se := wantCode(t, err, socket.CodeInvalidArgument, ""); se.Details["field"] != "amount_cents" {
		t.Fatalf("no amount: details %v, want field amount_cents", se.Details)
	}
	if n := e.newCharges(before); n != 0 {
		t.Fatalf("%d charges for invalid requests", n)
	}
	// The order may come as the request's id; an admin pays for another user.
	p, err := socketcaller.Call[payments.Payment](e.as(admin), e.c, "PAY", "ord_valid", payments.PayInput{AmountCents: 100, Gateway: "A", Card: cardOK, UserID: "bob"})
	if err != nil || p.OrderID != "ord_valid" || p.UserID != "bob" {
		t.Fatalf("got %+v %v", p, err)
	}
}

func testChargedOnce(t *testing.T, e *env) {
	const n = 20
	before := e.charges()
	in := payments.PayInput{OrderID: "ord_race", AmountCents: 4200, Gateway: "C", Card: cardOK}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var paid []payments.Payment
	for range n {
		wg.Go(func() {
			p, err := e.pay(alice, in)
			switch status.CodeOf(err) {
			case "":
				mu.Lock()
				paid = append(paid, p)
				mu.Unlock()
			case socket.CodeAlreadyExists, socket.CodeConflict:
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()
	if len(paid) != 1 {
		t.Fatalf("%d PAYs succeeded, want 1", len(paid))
	}
	if got := e.newCharges(before); got != 1 {
		t.Fatalf("%d charges at the gateways, want 1", got)
	}
	page, err := socketcaller.Call[payments.Page](e.as(admin), e.c, "LIST_PAYMENTS", "", payments.ListInput{OrderID: "ord_race"})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != paid[0].ID || page.Items[0].Status != payments.StatusSucceeded {
		t.Fatalf("payments of the order: %+v %v", page, err)
	}
	_, err = e.pay(alice, in)
	se := wantCode(t, err, socket.CodeAlreadyExists, "")
	if se.Details["payment_id"] != paid[0].ID {
		t.Fatalf("second PAY: %v %v", se, se.Details)
	}
	if got := e.newCharges(before); got != 1 {
		t.Fatalf("the second PAY reached a gateway")
	}
}

func testIdempotency(t *testing.T, e *env) {
	withKey := func(c caller, key string) caller { c.key = key; return c }
	in := payments.PayInput{OrderID: "ord_idem", AmountCents: 700, Gateway: "A", Card: cardOK}
	before := e.charges()
	first, err := e.pay(withKey(alice, "key-1"), in)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := e.pay(withKey(alice, "key-1"), in)
		if err != nil || again.ID != first.ID || again.Status != payments.StatusSucceeded {
			t.Fatalf("retry: %+v %v, want payment %s", again, err, first.ID)
		}
	}
	if got := e.newCharges(before); got != 1 {
		t.Fatalf("%d charges, want 1", got)
	}
	changed := in
	changed.AmountCents = 701
	_, err = e.pay(withKey(alice, "key-1"), changed)
	wantCode(t, err, socket.CodeConflict, "idempotency_key_reused")
	// Once refunded, the key's payment no longer pays: a retry is refused
	// rather than answered with a payment that was given back.
	refundIn := payments.PayInput{OrderID: "ord_idem_refund", AmountCents: 300, Gateway: "A", Card: cardOK}
	paid, err := e.pay(withKey(alice, "key-r"), refundIn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Request(e.as(admin), "REFUND", paid.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.pay(withKey(alice, "key-r"), refundIn)
	wantCode(t, err, socket.CodeFailedPrecondition, "idempotency_key_spent")
	// Keys are per caller: bob's key-1 is his own.
	_, err = e.pay(withKey(bob, "key-1"), payments.PayInput{OrderID: "ord_idem_bob", AmountCents: 700, Gateway: "A", Card: cardOK})
	if err != nil {
		t.Fatalf("bob's key: %v", err)
	}

	// A failure is replayed too, with the same payment and no new charge.
	bad := payments.PayInput{OrderID: "ord_idem_declined", AmountCents: 700, Gateway: "A", Card: cardDeclined}
	_, err = e.pay(withKey(alice, "key-2"), bad)
	id1 := wantCode(t, err, socket.CodeFailedPrecondition, "card_declined").Details["payment_id"]
	before = e.charges()
	_, err = e.pay(withKey(alice, "key-2"), bad)
	id2 := wantCode(t, err, socket.CodeFailedPrecondition, "card_declined").Details["payment_id"]
	if id1 != id2 || id1 == nil || e.newCharges(before) != 0 {
		t.Fatalf("replayed failure: payments %v and %v, %d charges", id1, id2, e.newCharges(before))
	}

	// A request refused before charging stores nothing: the key stays free.
	_, err = e.pay(withKey(alice, "key-3"), in)
	wantCode(t, err, socket.CodeAlreadyExists, "")
	if _, err := e.pay(withKey(alice, "key-3"), payments.PayInput{OrderID: "ord_idem_free", AmountCents: 700, Gateway: "A", Card: cardOK}); err != nil {
		t.Fatalf("the key after a refusal: %v", err)
	}

	// Concurrent requests with one key charge once.
	const n = 10
	before = e.charges()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	for range n {
		wg.Go(func() {
			p, err := e.pay(withKey(alice, "key-4"), payments.PayInput{OrderID: "ord_idem_race", AmountCents: 700, Gateway: "A", Card: cardOK})
			switch status.CodeOf(err) {
			case "":
				mu.Lock()
				ids[p.ID] = true
				mu.Unlock()
			case socket.CodeConflict:
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()
	if len(ids) != 1 || e.newCharges(before) != 1 {
		t.Fatalf("payments %v, %d charges; want one of each", ids, e.newCharges(before))
	}
}

func testRefund(t *testing.T, e *env) {
	in := payments.PayInput{OrderID: "ord_refund", AmountCents: 900, Gateway: "B", Card: cardOK}
	p, err := e.pay(alice, in)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.c.Request(e.as(alice), "REFUND", p.ID, nil)
	wantCode(t, err, socket.CodePermissionDenied, "")
	_, err = e.c.Request(e.as(admin), "REFUND", "pay_missing", nil)
	wantCode(t, err, socket.CodeNotFound, "")

	refundsBefore := e.sandboxes["B"].Refunds()
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var refunded []payments.Payment
	for range n {
		wg.Go(func() {
			r, err := socketcaller.Call[payments.Payment](e.as(admin), e.c, "REFUND", p.ID, nil)
			switch status.CodeOf(err) {
			case "":
				mu.Lock()
				refunded = append(refunded, r)
				mu.Unlock()
			case socket.CodeFailedPrecondition:
			default:
				t.Errorf("unexpected: %v", err)
			}
		})
	}
	wg.Wait()
	if len(refunded) != 1 || refunded[0].ID != p.ID || refunded[0].Status != payments.StatusRefunded || refunded[0].ProviderRef != p.ProviderRef {
		t.Fatalf("refunds: %+v", refunded)
	}
	if got := e.sandboxes["B"].Refunds() - refundsBefore; got != 1 {
		t.Fatalf("%d refunds at the gateway, want 1", got)
	}
	_, err = e.c.Request(e.as(admin), "REFUND", p.ID, nil)
	wantCode(t, err, socket.CodeFailedPrecondition, "not_refundable")
	if got := e.get(alice, p.ID); got.Status != payments.StatusRefunded {
		t.Fatalf("status %s", got.Status)
	}

	again, err := e.pay(alice, in)
	if err != nil || again.ID == p.ID || again.Status != payments.StatusSucceeded {
		t.Fatalf("pay after refund: %+v %v", again, err)
	}
	_, err = e.pay(alice, in)
	wantCode(t, err, socket.CodeAlreadyExists, "")

	_, err = e.pay(alice, payments.PayInput{OrderID: "ord_refund_failed", AmountCents: 900, Gateway: "B", Card: cardDeclined})
	failedID, _ := wantCode(t, err, socket.CodeFailedPrecondition, "card_declined").Details["payment_id"].(string)
	_, err = e.c.Request(e.as(admin), "REFUND", failedID, nil)
	se := wantCode(t, err, socket.CodeFailedPrecondition, "not_refundable")
	if se.Details["status"] != "failed" {
		t.Fatalf("details %v", se.Details)
	}
}

func testReads(t *testing.T, e *env) {
	carol, dave := caller{version: "v1", subject: "carol"}, caller{version: "v1", subject: "dave"}
	var mine []string
	for i := range 5 {
		p, err := e.pay(carol, payments.PayInput{OrderID: fmt.Sprintf("ord_reads_%d", i), AmountCents: 100, Gateway: "A", Card: cardOK})
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, p.ID)
	}
	if _, err := e.pay(dave, payments.PayInput{OrderID: "ord_reads_dave", AmountCents: 100, Gateway: "A", Card: cardDeclined}); err == nil {
		t.Fatal("declined card paid")
	}
	slices.Sort(mine)

	if got := e.get(carol, mine[0]); got.UserID != "carol" {
		t.Fatalf("own payment: %+v", got)
	}
	_, err := e.c.Request(e.as(dave), "GET_PAYMENT", mine[0], nil)
	wantCode(t, err, socket.CodeNotFound, "")
	_, err = e.c.Request(e.as(dave), "GET_PAYMENT", "pay_missing", nil)
	wantCode(t, err, socket.CodeNotFound, "")

	// Non-admins page through their own payments only.
	var seen []string
	token := ""
	for pages := 0; ; pages++ {
		page, err := socketcaller.Call[payments.Page](e.as(carol), e.c, "LIST_PAYMENTS", "", payments.ListInput{PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Items {
			seen = append(seen, p.ID)
		}
		if token = page.NextPageToken; token == "" {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
	}
	if fmt.Sprint(seen) != fmt.Sprint(mine) {
		t.Fatalf("listed %v, want %v", seen, mine)
	}
	page, err := socketcaller.Call[payments.Page](e.as(carol), e.c, "LIST_PAYMENTS", "", payments.ListInput{UserID: "dave"})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("carol lists dave's payments: %+v %v, want an empty page", page, err)
	}
	page, err = socketcaller.Call[payments.Page](e.as(dave), e.c, "LIST_PAYMENTS", "", payments.ListInput{Status: payments.StatusSucceeded})
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("dave's succeeded payments: %+v %v", page, err)
	}
	page, err = socketcaller.Call[payments.Page](e.as(admin), e.c, "LIST_PAYMENTS", "", payments.ListInput{UserID: "dave", Status: payments.StatusFailed})
	if err != nil || len(page.Items) != 1 || page.Items[0].FailureReason != "card_declined" {
		t.Fatalf("admin filter: %+v %v", page, err)
	}
	for _, bad := range []payments.ListInput{{PageSize: -1}, {PageSize: 1001}, {Status: "lost"}} {
		_, err := e.c.Request(e.as(admin), "LIST_PAYMENTS", "", bad)
		wantCode(t, err, socket.CodeInvalidArgument, "")
	}
}

func TestRegisterRejectsBadProviders(t *testing.T) {
	t.Parallel()
	srv, err := socket.NewServer(socket.Config{Name: "payments"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		st        payments.Store
		providers map[string]payments.Provider
	}{
		{"nil store", nil, nil},
		{"unknown gateway", payments.NewMemoryStore(), map[string]payments.Provider{"D": payments.NewHTTPProvider("http://127.0.0.1:1", 0, nil)}},
		{"nil provider", payments.NewMemoryStore(), map[string]payments.Provider{"A": nil}},
	}
	for _, tt := range tests {
		if err := payments.Register(srv, tt.st, tt.providers); err == nil {
			t.Errorf("%s: Register succeeded", tt.name)
		}
	}
}

func ExampleSupported() {
	for _, v := range []string{"v1", "v2", "v3", "v4"} {
		fmt.Println(v, payments.Supported(v))
	}
	// Output:
	// v1 [A]
	// v2 [A B C]
	// v3 [A B]
	// v4 []
}

// testNothingToCharge: an amount of 0 (an order its voucher covers) is
// paid without asking the gateway: a succeeded payment of 0 that holds
// the order, replayed for its key, refunded without the gateway.
func testNothingToCharge(t *testing.T, e *env) {
	before, refunds := e.charges(), e.sandboxes["A"].Refunds()
	in := payments.PayInput{OrderID: "ord_free", AmountCents: 0, Gateway: "A", Card: cardOK}
	keyed := caller{version: "v2", subject: "alice", key: "free-key"}
	p, err := e.pay(keyed, in)
	if err != nil || p.Status != payments.StatusSucceeded || p.AmountCents != 0 || p.ProviderRef != "" || p.CardLast4 != "4242" {
		t.Fatalf("PAY 0 = %+v, %v", p, err)
	}
	if again, err := e.pay(keyed, in); err != nil || again.ID != p.ID {
		t.Fatalf("PAY 0 again with its key = %+v, %v", again, err)
	}
	_, err = e.pay(alice, in)
	wantCode(t, err, socket.CodeAlreadyExists, "")
	r, err := socketcaller.Call[payments.Payment](e.as(admin), e.c, "REFUND", p.ID, nil)
	if err != nil || r.Status != payments.StatusRefunded {
		t.Fatalf("REFUND = %+v, %v", r, err)
	}
	_, err = e.c.Request(e.as(admin), "REFUND", p.ID, nil)
	wantCode(t, err, socket.CodeFailedPrecondition, "not_refundable")
	if n := e.newCharges(before); n != 0 || e.sandboxes["A"].Refunds() != refunds {
		t.Fatalf("%d charges and %d refunds at the gateway for nothing to charge", n, e.sandboxes["A"].Refunds()-refunds)
	}
	// Refunded, the payment lets go of the order.
	if p, err := e.pay(alice, in); err != nil || p.Status != payments.StatusSucceeded {
		t.Fatalf("PAY 0 after the refund = %+v, %v", p, err)
	}
}
