package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

// raw is a JSON body sent as is.
type raw = json.RawMessage

func mustVoucher(t *testing.T, c *socketcaller.Client, code string, cents int64) {
	t.Helper()
	if _, err := c.Request(sockettest.As(t, "v1", "root", "admin"), "CREATE_VOUCHER", "", orders.Voucher{Code: code, DiscountCents: cents}); err != nil {
		t.Fatal(err)
	}
}

func mustOrder(t *testing.T, c *socketcaller.Client, user, voucher string, lines ...orders.Line) orders.Order {
	t.Helper()
	if len(lines) == 0 {
		lines = []orders.Line{{ItemID: "apple", Quantity: 1}}
	}
	o, err := socketcaller.Call[orders.Order](sockettest.As(t, "v1", user), c, "CREATE_ORDER", "", orders.CreateOrderInput{Lines: lines, VoucherCode: voucher})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// begin starts a purchase of order id as ctx's caller and returns the
// snapshot to charge.
func begin(t *testing.T, c *socketcaller.Client, ctx context.Context, id string) orders.Order {
	t.Helper()
	o, err := socketcaller.Call[orders.Order](ctx, c, "BEGIN_PURCHASE", id, nil)
	if err != nil {
		t.Fatalf("BEGIN_PURCHASE %s: %v", id, err)
	}
	return o
}

// paidFor is MARK_PAID's body for a snapshot that was charged.
func paidFor(o orders.Order, paymentID string) orders.MarkPaidInput {
	return orders.MarkPaidInput{PaymentID: paymentID, AmountCents: o.TotalCents, Version: o.Version, PurchaseID: o.PurchaseID}
}

// purchase begins and completes a purchase of order id.
func purchase(t *testing.T, c *socketcaller.Client, ctx context.Context, id, paymentID string) orders.Order {
	t.Helper()
	o, err := socketcaller.Call[orders.Order](ctx, c, "MARK_PAID", id, paidFor(begin(t, c, ctx, id), paymentID))
	if err != nil {
		t.Fatalf("MARK_PAID %s: %v", id, err)
	}
	return o
}

func TestOrderLifecycle(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice, bob, admin := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "bob"), sockettest.As(t, "v1", "root", "admin")
		mustVoucher(t, c, "save1", 100)

		before := time.Now().Add(-time.Second)
		o, err := socketcaller.Call[orders.Order](alice, c, "CREATE_ORDER", "", raw(`{"lines": [{"item_id": "apple", "quantity": 2}, {"item_id": "pear", "quantity": 1}], "voucher_code": "save1"}`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(o.ID, "ord_") || len(o.ID) != 16 || o.UserID != "alice" || o.TotalCents != 400 || o.Status != orders.StatusPending ||
			o.VoucherCode != "SAVE1" || o.PaymentID != "" || o.Version != 1 || o.CreatedAt.Before(before) || o.CreatedAt.After(time.Now()) {
			t.Fatalf("created: %+v", o)
		}
		get := func(ctx context.Context) (orders.Order, error) {
			return socketcaller.Call[orders.Order](ctx, c, "GET_ORDER", o.ID, nil)
		}
		for _, ctx := range []context.Context{alice, admin} {
			if got, err := get(ctx); err != nil || !reflect.DeepEqual(got, o) {
				t.Fatalf("get: %+v %v, want %+v", got, err, o)
			}
		}
		_, err = get(bob)
		wantErr(t, err, socket.CodeNotFound, "")
		_, err = c.Request(alice, "GET_ORDER", "ord_000000000000", nil)
		wantErr(t, err, socket.CodeNotFound, "")

		update := func(ctx context.Context, body string) (orders.Order, error) {
			return socketcaller.Call[orders.Order](ctx, c, "UPDATE_ORDER", o.ID, raw(body))
		}
		for _, u := range []struct {
			body  string
			total int64
			code  string
		}{
			{`{"lines": [{"item_id": "melon", "quantity": 1}]}`, 900, "SAVE1"},
			{`{"voucher_code": ""}`, 1000, ""},
			{`{}`, 1000, ""},
			{`{"voucher_code": "Save1", "lines": [{"item_id": "pear", "quantity": 3}]}`, 500, "SAVE1"},
		} {
			got, err := update(alice, u.body)
			if err != nil || got.TotalCents != u.total || got.VoucherCode != u.code || got.ID != o.ID || got.UserID != "alice" {
				t.Fatalf("update %s: %+v %v", u.body, got, err)
			}
		}
		_, err = update(bob, `{"voucher_code": ""}`)
		wantErr(t, err, socket.CodeNotFound, "")
		_, err = update(alice, `{"voucher_code": "nope"}`)
		wantErr(t, err, socket.CodeInvalidArgument, "")
		_, err = update(alice, `{"lines": []}`)
		wantErr(t, err, socket.CodeInvalidArgument, "")
		if got, _ := get(admin); got.TotalCents != 500 || len(got.Lines) != 1 {
			t.Fatalf("failed updates changed the order: %+v", got)
		}

		check, err := c.Request(alice, "CHECK_VOUCHER", o.ID, nil)
		if err != nil || string(check) != `{"voucher":{"code":"SAVE1","discount_cents":100}}` {
			t.Fatalf("check voucher: %s %v", check, err)
		}
		_, err = c.Request(bob, "CHECK_VOUCHER", o.ID, nil)
		wantErr(t, err, socket.CodeNotFound, "")

		pay := func(ctx context.Context, id, body string) (orders.Order, error) {
			return socketcaller.Call[orders.Order](ctx, c, "MARK_PAID", id, raw(body))
		}
		if pending, err := socketcaller.Call[orders.Order](alice, c, "REQUIRE_PENDING", o.ID, nil); err != nil || pending.ID != o.ID {
			t.Fatalf("require pending: %+v %v", pending, err)
		}
		_, err = c.Request(bob, "REQUIRE_PENDING", o.ID, nil)
		wantErr(t, err, socket.CodeNotFound, "")
		_, err = c.Request(bob, "BEGIN_PURCHASE", o.ID, nil)
		wantErr(t, err, socket.CodeNotFound, "")
		snap := begin(t, c, alice, o.ID)
		if snap.Status != orders.StatusPaying || snap.Version != 5 || snap.TotalCents != 500 || !strings.HasPrefix(snap.PurchaseID, "pur_") || !snap.LeaseExpiresAt.After(time.Now()) {
			t.Fatalf("begin purchase: %+v", snap)
		}
		_, err = c.Request(alice, "REQUIRE_PENDING", o.ID, nil)
		wantErr(t, err, socket.CodeConflict, orders.ReasonPurchaseInProgress)
		body := func(pay string) string {
			return fmt.Sprintf(`{"payment_id": %q, "amount_cents": %d, "version": %d, "purchase_id": %q}`, pay, snap.TotalCents, snap.Version, snap.PurchaseID)
		}
		_, err = pay(bob, o.ID, body("pay_1"))
		wantErr(t, err, socket.CodeNotFound, "")
		for _, missing := range []string{
			`{}`,
			`{"amount_cents": 500, "version": 5, "purchase_id": "x"}`,
			`{"payment_id": "pay_1", "version": 5, "purchase_id": "x"}`,
			`{"payment_id": "pay_1", "amount_cents": 500, "purchase_id": "x"}`,
			`{"payment_id": "pay_1", "amount_cents": 500, "version": 5}`,
		} {
			_, err = pay(alice, o.ID, missing)
			wantErr(t, err, socket.CodeInvalidArgument, "")
		}
		paid, err := pay(alice, o.ID, body("pay_1"))
		if err != nil || paid.Status != orders.StatusPaid || paid.PaymentID != "pay_1" || paid.TotalCents != 500 || paid.Version != 6 {
			t.Fatalf("mark paid: %+v %v", paid, err)
		}
		if again, err := pay(alice, o.ID, body("pay_1")); err != nil || !reflect.DeepEqual(again, paid) {
			t.Fatalf("MARK_PAID retried: %+v %v, want %+v", again, err, paid)
		}
		_, err = pay(admin, o.ID, body("pay_2"))
		if e := wantErr(t, err, socket.CodeAlreadyExists, orders.ReasonAlreadyPaid); !strings.Contains(e.Message, "is already paid") {
			t.Fatalf("message: %q", e.Message)
		}
		_, err = c.Request(alice, "REQUIRE_PENDING", o.ID, nil)
		wantErr(t, err, socket.CodeAlreadyExists, orders.ReasonAlreadyPaid)
		_, err = update(alice, `{"voucher_code": ""}`)
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonOrderPaid)
		_, err = c.Request(admin, "DELETE_ORDER", o.ID, nil)
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonOrderPaid)
		_, err = c.Request(alice, "BEGIN_PURCHASE", o.ID, nil)
		wantErr(t, err, socket.CodeAlreadyExists, orders.ReasonAlreadyPaid)
		if check, err := c.Request(alice, "CHECK_VOUCHER", o.ID, nil); err != nil || !strings.Contains(string(check), "SAVE1") {
			t.Fatalf("the order that redeemed the voucher: %s %v", check, err)
		}

		// Bob's order with the same voucher: it is used now.
		b := mustOrder(t, c, "bob", "SAVE1")
		_, err = c.Request(bob, "CHECK_VOUCHER", b.ID, nil)
		if e := wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonVoucherUsed); e.Details["code"] != "SAVE1" {
			t.Fatalf("details: %v", e.Details)
		}
		_, err = c.Request(bob, "BEGIN_PURCHASE", b.ID, nil)
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonVoucherUsed)
		if got, _ := socketcaller.Call[orders.Order](bob, c, "GET_ORDER", b.ID, nil); got.Status != orders.StatusPending {
			t.Fatalf("refused order: %+v", got)
		}
		_, err = c.Request(alice, "DELETE_ORDER", b.ID, nil)
		wantErr(t, err, socket.CodeNotFound, "")
		del, err := socketcaller.Call[orders.Order](bob, c, "DELETE_ORDER", b.ID, nil)
		if err != nil || del.ID != b.ID || del.UserID != "bob" {
			t.Fatalf("delete: %+v %v", del, err)
		}
		_, err = c.Request(bob, "DELETE_ORDER", b.ID, nil)
		wantErr(t, err, socket.CodeNotFound, "")

		// Without a voucher the check answers null.
		n := mustOrder(t, c, "bob", "")
		if check, err := c.Request(bob, "CHECK_VOUCHER", n.ID, nil); err != nil || string(check) != `{"voucher":null}` {
			t.Fatalf("check without voucher: %s %v", check, err)
		}
		if got := purchase(t, c, bob, n.ID, "pay_4"); got.Status != orders.StatusPaid {
			t.Fatalf("pay without voucher: %+v", got)
		}
	})
}

func TestCreateOrderValidation(t *testing.T) {
	t.Parallel()
	c := startService(t, orders.NewMemoryStore(), catalogue)
	mustVoucher(t, c, "BIG", 1_000_000)
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		body    string
		code    status.Code
		mention string // in the error message, or the order's user_id on success
		total   int64
	}{
		{"defaults to the caller", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "apple", "quantity": 3}]}`, "", "alice", 450},
		{"own user_id", sockettest.As(t, "v1", "alice"), `{"user_id": "alice", "lines": [{"item_id": "free", "quantity": 3}]}`, "", "alice", 0},
		{"admin for another user", sockettest.As(t, "v1", "root", "admin"), `{"user_id": "bob", "lines": [{"item_id": "apple", "quantity": 1}, {"item_id": "apple", "quantity": 1}]}`, "", "bob", 300},
		{"discount floors at zero", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "melon", "quantity": 2}], "voucher_code": "big"}`, "", "alice", 0},
		{"another user", sockettest.As(t, "v1", "alice"), `{"user_id": "bob", "lines": [{"item_id": "apple", "quantity": 1}]}`, socket.CodePermissionDenied, "admins", 0},
		{"anonymous", sockettest.As(t, "v1", "anonymous"), `{"lines": [{"item_id": "apple", "quantity": 1}]}`, socket.CodeUnauthenticated, "", 0},
		{"no principal", sockettest.As(t, "v1", ""), `{"lines": [{"item_id": "apple", "quantity": 1}]}`, socket.CodeUnauthenticated, "", 0},
		{"no lines", sockettest.As(t, "v1", "alice"), `{}`, socket.CodeInvalidArgument, "lines", 0},
		{"empty lines", sockettest.As(t, "v1", "alice"), `{"lines": []}`, socket.CodeInvalidArgument, "lines", 0},
		{"zero quantity", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "apple", "quantity": 1}, {"item_id": "pear", "quantity": 0}]}`, socket.CodeInvalidArgument, "lines[1].quantity", 0},
		{"negative quantity", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "apple", "quantity": -1}]}`, socket.CodeInvalidArgument, "lines[0].quantity", 0},
		{"no item_id", sockettest.As(t, "v1", "alice"), `{"lines": [{"quantity": 1}]}`, socket.CodeInvalidArgument, "lines[0].item_id", 0},
		{"unknown voucher", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "apple", "quantity": 1}], "voucher_code": "nope"}`, socket.CodeInvalidArgument, `"NOPE"`, 0},
		{"unknown items", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "kiwi", "quantity": 1}, {"item_id": "apple", "quantity": 1}, {"item_id": "fig", "quantity": 1}]}`, socket.CodeNotFound, "kiwi, fig", 0},
		{"total overflows", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "gold", "quantity": 8}]}`, socket.CodeInvalidArgument, "too large", 0},
		{"unknown field", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "apple", "quantity": 1}], "status": "paid"}`, socket.CodeInvalidArgument, "status", 0},
		{"wrong type", sockettest.As(t, "v1", "alice"), `{"lines": [{"item_id": "apple", "quantity": "1"}]}`, socket.CodeInvalidArgument, "quantity", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := socketcaller.Call[orders.Order](tc.ctx, c, "CREATE_ORDER", "", raw(tc.body))
			if tc.code == "" {
				if err != nil || o.UserID != tc.mention || o.TotalCents != tc.total || o.Status != orders.StatusPending {
					t.Fatalf("got %+v %v, want user %s total %d", o, err, tc.mention, tc.total)
				}
				return
			}
			if e := wantErr(t, err, tc.code, ""); !strings.Contains(e.Message, tc.mention) {
				t.Fatalf("message %q does not mention %q", e.Message, tc.mention)
			}
		})
	}
}

func TestListOrders(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice, bob, admin := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "bob"), sockettest.As(t, "v1", "root", "admin")
		mine := map[string]bool{}
		for range 3 {
			mine[mustOrder(t, c, "alice", "").ID] = true
		}
		for range 2 {
			mustOrder(t, c, "bob", "")
		}
		paidID := ""
		for id := range mine {
			paidID = id
			break
		}
		purchase(t, c, alice, paidID, "p")
		list := func(ctx context.Context, in orders.ListOrdersInput) ([]orders.Order, error) {
			var all []orders.Order
			for pages := 0; ; pages++ {
				p, err := socketcaller.Call[orders.Page[orders.Order]](ctx, c, "LIST_ORDERS", "", in)
				if err != nil {
					return nil, err
				}
				if p.Items == nil || len(p.Items) > max(in.PageSize, 1) && in.PageSize != 0 {
					t.Fatalf("page: %+v", p)
				}
				all = append(all, p.Items...)
				if p.NextPageToken == "" {
					return all, nil
				}
				if pages > 10 {
					t.Fatal("endless paging")
				}
				in.PageToken = p.NextPageToken
			}
		}
		for _, tc := range []struct {
			name string
			ctx  context.Context
			in   orders.ListOrdersInput
			n    int
			user string // every order's user, if set
		}{
			{"own", alice, orders.ListOrdersInput{}, 3, "alice"},
			{"own in pages", alice, orders.ListOrdersInput{PageSize: 2}, 3, "alice"},
			{"own by user_id", alice, orders.ListOrdersInput{UserID: "alice", PageSize: 1}, 3, "alice"},
			{"own paid", alice, orders.ListOrdersInput{Status: orders.StatusPaid}, 1, "alice"},
			{"own pending", alice, orders.ListOrdersInput{Status: orders.StatusPending}, 2, "alice"},
			{"bob's", bob, orders.ListOrdersInput{}, 2, "bob"},
			{"admin: all", admin, orders.ListOrdersInput{PageSize: 2}, 5, ""},
			{"admin: one user", admin, orders.ListOrdersInput{UserID: "bob"}, 2, "bob"},
			{"admin: paid", admin, orders.ListOrdersInput{Status: orders.StatusPaid}, 1, "alice"},
			{"admin: nobody", admin, orders.ListOrdersInput{UserID: "carol"}, 0, ""},
			{"another user's: none", alice, orders.ListOrdersInput{UserID: "bob"}, 0, ""},
			{"admin: paying", admin, orders.ListOrdersInput{Status: orders.StatusPaying}, 0, ""},
		} {
			got, err := list(tc.ctx, tc.in)
			if err != nil || len(got) != tc.n {
				t.Fatalf("%s: %d orders %v, want %d", tc.name, len(got), err, tc.n)
			}
			for i, o := range got {
				if tc.user != "" && o.UserID != tc.user || i > 0 && got[i-1].ID >= o.ID {
					t.Fatalf("%s: %v", tc.name, ids(got))
				}
			}
		}
		for _, tc := range []struct {
			name string
			ctx  context.Context
			body string
			code status.Code
		}{
			{"bad status", admin, `{"status": "shipped"}`, socket.CodeInvalidArgument},
			{"page too large", admin, `{"page_size": 1001}`, socket.CodeInvalidArgument},
			{"negative page", admin, `{"page_size": -1}`, socket.CodeInvalidArgument},
			{"anonymous", sockettest.As(t, "v1", "anonymous"), `{}`, socket.CodeUnauthenticated},
		} {
			_, err := c.Request(tc.ctx, "LIST_ORDERS", "", raw(tc.body))
			if status.CodeOf(err) != tc.code {
				t.Fatalf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
	})
}

func TestVouchers(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		c := startService(t, st, catalogue)
		alice, admin := sockettest.As(t, "v1", "alice"), sockettest.As(t, "v1", "root", "admin")
		for _, tc := range []struct {
			name string
			ctx  context.Context
			body string
			code status.Code
			want orders.Voucher
		}{
			{"lower case is stored upper", admin, `{"code": "spring-25_x", "discount_cents": 250}`, "", orders.Voucher{Code: "SPRING-25_X", DiscountCents: 250}},
			{"shortest", admin, `{"code": "ABC", "discount_cents": 1}`, "", orders.Voucher{Code: "ABC", DiscountCents: 1}},
			{"longest", admin, `{"code": "` + strings.Repeat("Z", 40) + `", "discount_cents": 1}`, "", orders.Voucher{Code: strings.Repeat("Z", 40), DiscountCents: 1}},
			{"duplicate in another case", admin, `{"code": "abc", "discount_cents": 5}`, socket.CodeAlreadyExists, orders.Voucher{}},
			{"not an admin", alice, `{"code": "MINE", "discount_cents": 5}`, socket.CodePermissionDenied, orders.Voucher{}},
			{"no code", admin, `{"discount_cents": 5}`, socket.CodeInvalidArgument, orders.Voucher{}},
			{"too short", admin, `{"code": "AB", "discount_cents": 5}`, socket.CodeInvalidArgument, orders.Voucher{}},
			{"too long", admin, `{"code": "` + strings.Repeat("Z", 41) + `", "discount_cents": 5}`, socket.CodeInvalidArgument, orders.Voucher{}},
			{"space", admin, `{"code": "A B C", "discount_cents": 5}`, socket.CodeInvalidArgument, orders.Voucher{}},
			{"punctuation", admin, `{"code": "ABC!", "discount_cents": 5}`, socket.CodeInvalidArgument, orders.Voucher{}},
			{"no discount", admin, `{"code": "FREE"}`, socket.CodeInvalidArgument, orders.Voucher{}},
			{"negative discount", admin, `{"code": "FREE", "discount_cents": -5}`, socket.CodeInvalidArgument, orders.Voucher{}},
		} {
			v, err := socketcaller.Call[orders.Voucher](tc.ctx, c, "CREATE_VOUCHER", "", raw(tc.body))
			if tc.code != "" {
				if status.CodeOf(err) != tc.code {
					t.Fatalf("%s: %v, want %s", tc.name, err, tc.code)
				}
				continue
			}
			if err != nil || v != tc.want {
				t.Fatalf("%s: %+v %v", tc.name, v, err)
			}
		}

		if v, err := socketcaller.Call[orders.Voucher](alice, c, "GET_VOUCHER", "spring-25_x", nil); err != nil || v.DiscountCents != 250 {
			t.Fatalf("get: %+v %v", v, err)
		}
		_, err := c.Request(sockettest.As(t, "v1", "anonymous"), "GET_VOUCHER", "ABC", nil)
		wantErr(t, err, socket.CodeUnauthenticated, "")
		_, err = c.Request(alice, "GET_VOUCHER", "NOPE", nil)
		wantErr(t, err, socket.CodeNotFound, "")

		_, err = c.Request(alice, "LIST_VOUCHERS", "", nil)
		wantErr(t, err, socket.CodePermissionDenied, "")
		p, err := socketcaller.Call[orders.Page[orders.Voucher]](admin, c, "LIST_VOUCHERS", "", orders.ListVouchersInput{PageSize: 2})
		if err != nil || len(p.Items) != 2 || p.Items[0].Code != "ABC" || p.Items[1].Code != "SPRING-25_X" || p.NextPageToken != "SPRING-25_X" {
			t.Fatalf("page 1: %+v %v", p, err)
		}
		p, err = socketcaller.Call[orders.Page[orders.Voucher]](admin, c, "LIST_VOUCHERS", "", orders.ListVouchersInput{PageSize: 2, PageToken: p.NextPageToken})
		if err != nil || len(p.Items) != 1 || p.Items[0].Code != strings.Repeat("Z", 40) || p.NextPageToken != "" {
			t.Fatalf("page 2: %+v %v", p, err)
		}

		upd := func(ctx context.Context, code, body string) (orders.Voucher, error) {
			return socketcaller.Call[orders.Voucher](ctx, c, "UPDATE_VOUCHER", code, raw(body))
		}
		if v, err := upd(admin, "abc", `{"discount_cents": 75}`); err != nil || v != (orders.Voucher{Code: "ABC", DiscountCents: 75}) {
			t.Fatalf("update: %+v %v", v, err)
		}
		if v, err := upd(admin, "ABC", `{}`); err != nil || v.DiscountCents != 75 {
			t.Fatalf("empty update: %+v %v", v, err)
		}
		_, err = upd(admin, "ABC", `{"discount_cents": 0}`)
		wantErr(t, err, socket.CodeInvalidArgument, "")
		_, err = upd(alice, "ABC", `{"discount_cents": 1}`)
		wantErr(t, err, socket.CodePermissionDenied, "")
		_, err = upd(admin, "NOPE", `{"discount_cents": 1}`)
		wantErr(t, err, socket.CodeNotFound, "")

		// An order keeps its voucher's code; once the voucher is deleted the
		// order's check and recomputation refuse it, until it is removed.
		o := mustOrder(t, c, "alice", "abc", orders.Line{ItemID: "melon", Quantity: 1})
		if o.TotalCents != 925 {
			t.Fatalf("order with the updated discount: %+v", o)
		}
		_, err = c.Request(alice, "DELETE_VOUCHER", "ABC", nil)
		wantErr(t, err, socket.CodePermissionDenied, "")
		if v, err := socketcaller.Call[orders.Voucher](admin, c, "DELETE_VOUCHER", "abc", nil); err != nil || v.Code != "ABC" {
			t.Fatalf("delete: %+v %v", v, err)
		}
		_, err = c.Request(admin, "DELETE_VOUCHER", "ABC", nil)
		wantErr(t, err, socket.CodeNotFound, "")
		_, err = c.Request(alice, "CHECK_VOUCHER", o.ID, nil)
		if e := wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonUnknownVoucher); e.Details["code"] != "ABC" {
			t.Fatalf("details: %v", e.Details)
		}
		_, err = c.Request(alice, "UPDATE_ORDER", o.ID, raw(`{"lines": [{"item_id": "pear", "quantity": 1}]}`))
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonUnknownVoucher)
		if got, err := socketcaller.Call[orders.Order](alice, c, "UPDATE_ORDER", o.ID, raw(`{"voucher_code": ""}`)); err != nil || got.TotalCents != 1000 || got.VoucherCode != "" {
			t.Fatalf("removing the voucher: %+v %v", got, err)
		}
	})
}

func TestPricerErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		code status.Code
		msg  string
	}{
		{"not found passes through", socket.Errorf(socket.CodeNotFound, "no item %q", "kiwi"), socket.CodeNotFound, `no item "kiwi"`},
		{"unavailable passes through", socket.Errorf(socket.CodeUnavailable, "inventory down"), socket.CodeUnavailable, "inventory down"},
		{"other errors are internal", errors.New("connection refused to 10.1.2.3"), socket.CodeInternal, "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pricer := orders.PricerFunc(func(context.Context, []string) (map[string]int64, error) { return nil, tc.err })
			c := startService(t, orders.NewMemoryStore(), pricer)
			_, err := c.Request(sockettest.As(t, "v1", "alice"), "CREATE_ORDER", "", orders.CreateOrderInput{Lines: []orders.Line{{ItemID: "kiwi", Quantity: 1}}})
			if e := wantErr(t, err, tc.code, ""); e.Message != tc.msg {
				t.Fatalf("message %q, want %q", e.Message, tc.msg)
			}
		})
	}
}

func TestRegisterRefusesMissingParts(t *testing.T) {
	t.Parallel()
	srv, err := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := orders.Register(srv, nil, catalogue); err == nil {
		t.Fatal("nil store accepted")
	}
	if err := orders.Register(srv, orders.NewMemoryStore(), nil); err == nil {
		t.Fatal("nil pricer accepted")
	}
	if err := orders.Register(srv, orders.NewMemoryStore(), catalogue); err != nil {
		t.Fatal(err)
	}
	if err := orders.Register(srv, orders.NewMemoryStore(), catalogue); err == nil {
		t.Fatal("registered twice")
	}
}
