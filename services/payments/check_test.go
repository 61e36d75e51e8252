package payments_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// errShape is an error as a client sees it, with id taken out of the
// message: what must not differ between someone else's object and a
// missing one.
func errShape(err error, id string) string {
	if err == nil {
		return "no error"
	}
	e := status.AsError(err)
	return fmt.Sprintf("%s %q %v", e.Code, strings.ReplaceAll(e.Message, id, "ID"), e.Details)
}

// TestCheckPaymentRefusesWhatPayRefuses sends the same bodies to
// CHECK_PAYMENT and PAY: every request PAY refuses before charging,
// CHECK_PAYMENT refuses with the same code, message and details, and
// neither reaches a gateway; what PAY would accept, CHECK_PAYMENT
// approves without charging.
func TestCheckPaymentRefusesWhatPayRefuses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, payments.NewMemoryStore())
	// A server whose gateway C is not configured.
	hc := testHTTPClient(t)
	sbA, provA := startSandbox(t, "A", 0, providerTimeout, hc)
	srv, err := socket.NewServer(socket.Config{Name: "payments"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := payments.Register(srv, payments.NewMemoryStore(), map[string]payments.Provider{"A": provA}); err != nil {
		t.Fatal(err)
	}
	onlyA := sockettest.Start(t, srv)

	good := payments.PayInput{OrderID: "ord_check", AmountCents: 100, Gateway: "A", Card: cardOK}
	for _, tc := range []struct {
		name   string
		as     caller
		id     string
		edit   func(*payments.PayInput)
		code   status.Code
		client *socketcaller.Client
	}{
		{"no order", alice, "", func(in *payments.PayInput) { in.OrderID = "" }, socket.CodeInvalidArgument, nil},
		{"order and id differ", alice, "ord_other", nil, socket.CodeInvalidArgument, nil},
		{"negative amount", alice, "", func(in *payments.PayInput) { in.AmountCents = -5 }, socket.CodeInvalidArgument, nil},
		{"no gateway", alice, "", func(in *payments.PayInput) { in.Gateway = "" }, socket.CodeInvalidArgument, nil},
		{"no card", alice, "", func(in *payments.PayInput) { in.Card = "" }, socket.CodeInvalidArgument, nil},
		{"short card", alice, "", func(in *payments.PayInput) { in.Card = "4242" }, socket.CodeInvalidArgument, nil},
		{"card with letters", alice, "", func(in *payments.PayInput) { in.Card = "42424242424242ab" }, socket.CodeInvalidArgument, nil},
		{"for someone else", alice, "", func(in *payments.PayInput) { in.UserID = "bob" }, socket.CodePermissionDenied, nil},
		{"anonymous", caller{version: "v2"}, "", nil, socket.CodeUnauthenticated, nil},
		{"v1 gateway B", caller{version: "v1", subject: "alice"}, "", func(in *payments.PayInput) { in.Gateway = "B" }, socket.CodeNotSupported, nil},
		{"v3 gateway C", caller{version: "v3", subject: "alice"}, "", func(in *payments.PayInput) { in.Gateway = "C" }, socket.CodeNotSupported, nil},
		{"unknown gateway", alice, "", func(in *payments.PayInput) { in.Gateway = "Z" }, socket.CodeNotSupported, nil},
		{"no version", caller{subject: "alice"}, "", nil, socket.CodeNotSupported, nil},
		{"unknown version", caller{version: "v9", subject: "alice"}, "", nil, socket.CodeNotSupported, nil},
		{"gateway not configured", alice, "", func(in *payments.PayInput) { in.Gateway = "C" }, socket.CodeUnavailable, onlyA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.c
			if tc.client != nil {
				c = tc.client
			}
			in := good
			if tc.edit != nil {
				tc.edit(&in)
			}
			before, beforeA := e.charges(), sbA.Charges()
			_, checkErr := c.Request(e.as(tc.as), "CHECK_PAYMENT", tc.id, in)
			if n := e.newCharges(before) + sbA.Charges() - beforeA; n != 0 {
				t.Fatalf("CHECK_PAYMENT charged %d times", n)
			}
			_, payErr := c.Request(e.as(tc.as), "PAY", tc.id, in)
			if n := e.newCharges(before) + sbA.Charges() - beforeA; n != 0 {
				t.Fatalf("PAY charged %d times for a request it refuses", n)
			}
			wantCode(t, payErr, tc.code, "")
			if got, want := errShape(checkErr, ""), errShape(payErr, ""); got != want {
				t.Fatalf("CHECK_PAYMENT: %s\nPAY:           %s", got, want)
			}
		})
	}

	t.Run("approves without charging", func(t *testing.T) {
		before := e.charges()
		for _, body := range []any{
			good,
			map[string]any{"order_id": "ord_check", "gateway": "B", "card": cardOK}, // the amount is not known yet
			map[string]any{"gateway": "C", "card": cardDeclined, "user_id": "bob"},  // an admin, the order as the id
		} {
			as, id := alice, ""
			if m, ok := body.(map[string]any); ok && m["user_id"] == "bob" {
				as, id = admin, "ord_check"
			}
			got, err := socketcaller.Call[payments.PayCheck](e.as(as), e.c, "CHECK_PAYMENT", id, body)
			if err != nil || !got.OKToPay || got.Gateway == "" {
				t.Fatalf("check %v: %+v %v", body, got, err)
			}
		}
		if n := e.newCharges(before); n != 0 {
			t.Fatalf("CHECK_PAYMENT charged %d times", n)
		}
		raw, err := e.c.Request(e.as(alice), "CHECK_PAYMENT", "", good)
		if err != nil || string(raw) != `{"ok_to_pay":true,"gateway":"A"}` {
			t.Fatalf("result %s %v", raw, err)
		}
	})
}

// TestOthersPaymentsLookMissing checks that another user's payment answers
// exactly like a missing one, and that listing another user's payments is
// an empty list, like a user without payments.
func TestOthersPaymentsLookMissing(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name string
		open func(t *testing.T) payments.Store
	}{
		{"memory", func(*testing.T) payments.Store { return payments.NewMemoryStore() }},
		{"sqlite", func(t *testing.T) payments.Store { return sqlStore(t, sqltest.SQLite(t)) }},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, kind.open(t))
			p, err := e.pay(alice, payments.PayInput{OrderID: "ord_leak", AmountCents: 100, Gateway: "A", Card: cardOK})
			if err != nil {
				t.Fatal(err)
			}
			_, other := e.c.Request(e.as(bob), "GET_PAYMENT", p.ID, nil)
			_, missing := e.c.Request(e.as(bob), "GET_PAYMENT", "pay_000000000000", nil)
			wantCode(t, missing, socket.CodeNotFound, "")
			if got, want := errShape(other, p.ID), errShape(missing, "pay_000000000000"); got != want {
				t.Fatalf("another's payment: %s, a missing one: %s", got, want)
			}
			for _, in := range []payments.ListInput{{UserID: "alice"}, {UserID: "alice", OrderID: "ord_leak"}, {OrderID: "ord_leak"}} {
				page, err := socketcaller.Call[payments.Page](e.as(bob), e.c, "LIST_PAYMENTS", "", in)
				if err != nil || len(page.Items) != 0 || page.Items == nil {
					t.Fatalf("bob lists %+v: %+v %v, want an empty page", in, page, err)
				}
			}
			if got := e.get(alice, p.ID); got.ID != p.ID {
				t.Fatalf("alice's own payment: %+v", got)
			}
		})
	}
}
