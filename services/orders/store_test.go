package orders_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/streamgate/streamgate/services/internal/sqldb/sqltest"
	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
)

func order(id, user, voucher string) orders.Order {
	return orders.Order{
		ID:          id,
		UserID:      user,
		Lines:       []orders.Line{{ItemID: "apple", Quantity: 2}, {ItemID: "pear", Quantity: 1}},
		VoucherCode: voucher,
		TotalCents:  500,
		Status:      orders.StatusPending,
		CreatedAt:   time.Unix(1700000000, 123456789).UTC(),
	}
}

func ids(os []orders.Order) []string {
	out := []string{}
	for _, o := range os {
		out = append(out, o.ID)
	}
	return out
}

func TestStoreOrders(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		ctx := context.Background()
		for i, user := range []string{"alice", "bob", "alice", "alice", "bob"} {
			if err := st.CreateOrder(ctx, order(fmt.Sprintf("ord_%d", i), user, "")); err != nil {
				t.Fatal(err)
			}
		}
		wantErr(t, st.CreateOrder(ctx, order("ord_1", "carol", "")), socket.CodeAlreadyExists, "")

		got, err := st.GetOrder(ctx, "ord_1")
		if want := order("ord_1", "bob", ""); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("get: %+v %v, want %+v", got, err, want)
		}
		got.Lines[0].Quantity = 99 // the store must not share its lines
		if again, _ := st.GetOrder(ctx, "ord_1"); again.Lines[0].Quantity != 2 {
			t.Fatalf("the store shares lines with callers: %+v", again)
		}
		_, err = st.GetOrder(ctx, "ord_x")
		wantErr(t, err, socket.CodeNotFound, "")

		if _, err := st.MarkPaid(ctx, "ord_3", "pay_1"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			q    orders.OrderQuery
			want []string
		}{
			{"all", orders.OrderQuery{Limit: 10}, []string{"ord_0", "ord_1", "ord_2", "ord_3", "ord_4"}},
			{"limit", orders.OrderQuery{Limit: 2}, []string{"ord_0", "ord_1"}},
			{"after", orders.OrderQuery{After: "ord_1", Limit: 2}, []string{"ord_2", "ord_3"}},
			{"user", orders.OrderQuery{UserID: "alice", Limit: 10}, []string{"ord_0", "ord_2", "ord_3"}},
			{"user after", orders.OrderQuery{UserID: "alice", After: "ord_2", Limit: 10}, []string{"ord_3"}},
			{"status", orders.OrderQuery{Status: orders.StatusPaid, Limit: 10}, []string{"ord_3"}},
			{"user and status", orders.OrderQuery{UserID: "bob", Status: orders.StatusPaid, Limit: 10}, []string{}},
			{"none after the last", orders.OrderQuery{After: "ord_4", Limit: 10}, []string{}},
		} {
			list, err := st.ListOrders(ctx, c.q)
			if err != nil || !reflect.DeepEqual(ids(list), c.want) {
				t.Errorf("%s: %v %v, want %v", c.name, ids(list), err, c.want)
			}
		}

		// Conditional update: only from the state read, only while pending.
		prev := order("ord_0", "alice", "")
		next := prev
		next.Lines, next.VoucherCode, next.TotalCents = []orders.Line{{ItemID: "melon", Quantity: 3}}, "SAVE", 2900
		got, err = st.UpdatePendingOrder(ctx, prev, next)
		if err != nil || !reflect.DeepEqual(got, next) {
			t.Fatalf("update: %+v %v, want %+v", got, err, next)
		}
		if got, _ := st.GetOrder(ctx, "ord_0"); !reflect.DeepEqual(got, next) {
			t.Fatalf("after update: %+v", got)
		}
		_, err = st.UpdatePendingOrder(ctx, prev, next) // prev is stale now
		wantErr(t, err, socket.CodeConflict, "")
		_, err = st.UpdatePendingOrder(ctx, order("ord_3", "alice", ""), order("ord_3", "alice", "X"))
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonOrderPaid)
		_, err = st.UpdatePendingOrder(ctx, order("ord_x", "alice", ""), order("ord_x", "alice", ""))
		wantErr(t, err, socket.CodeNotFound, "")

		del, err := st.DeletePendingOrder(ctx, "ord_4")
		if err != nil || !reflect.DeepEqual(del, order("ord_4", "bob", "")) {
			t.Fatalf("delete: %+v %v", del, err)
		}
		_, err = st.DeletePendingOrder(ctx, "ord_4")
		wantErr(t, err, socket.CodeNotFound, "")
		_, err = st.DeletePendingOrder(ctx, "ord_3")
		wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonOrderPaid)
		if _, err := st.GetOrder(ctx, "ord_3"); err != nil {
			t.Fatalf("a paid order was deleted: %v", err)
		}
	})
}

func TestStoreMarkPaid(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		ctx := context.Background()
		for _, o := range []orders.Order{order("a", "alice", ""), order("b", "alice", "V1"), order("c", "bob", "V1"), order("d", "bob", "V2")} {
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.MarkPaid(ctx, "a", "pay_a")
		if err != nil || got.Status != orders.StatusPaid || got.PaymentID != "pay_a" || got.ID != "a" || len(got.Lines) != 2 {
			t.Fatalf("mark paid: %+v %v", got, err)
		}
		_, err = st.MarkPaid(ctx, "a", "pay_again")
		if e := wantErr(t, err, socket.CodeAlreadyExists, orders.ReasonAlreadyPaid); e.Message != `order "a" is already paid` {
			t.Errorf("message: %q", e.Message)
		}
		if got, _ := st.GetOrder(ctx, "a"); got.PaymentID != "pay_a" {
			t.Fatalf("a second MarkPaid changed the payment: %+v", got)
		}
		_, err = st.MarkPaid(ctx, "x", "pay_x")
		wantErr(t, err, socket.CodeNotFound, "")

		if by, err := st.VoucherRedeemer(ctx, "V1"); err != nil || by != "" {
			t.Fatalf("redeemer before: %q %v", by, err)
		}
		if _, err := st.MarkPaid(ctx, "b", "pay_b"); err != nil {
			t.Fatal(err)
		}
		if by, err := st.VoucherRedeemer(ctx, "V1"); err != nil || by != "b" {
			t.Fatalf("redeemer: %q %v", by, err)
		}
		_, err = st.MarkPaid(ctx, "c", "pay_c")
		if e := wantErr(t, err, socket.CodeFailedPrecondition, orders.ReasonVoucherUsed); e.Details["code"] != "V1" {
			t.Fatalf("details: %v", e.Details)
		}
		// The refused order stays pending: status and redemption roll back together.
		if got, _ := st.GetOrder(ctx, "c"); got.Status != orders.StatusPending || got.PaymentID != "" {
			t.Fatalf("refused order: %+v", got)
		}
		if _, err := st.MarkPaid(ctx, "d", "pay_d"); err != nil {
			t.Fatalf("another voucher: %v", err)
		}
	})
}

func TestStoreVouchers(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		ctx := context.Background()
		for i, code := range []string{"C3", "A1", "B2", "D4"} {
			if err := st.CreateVoucher(ctx, orders.Voucher{Code: code, DiscountCents: int64(100 * (i + 1))}); err != nil {
				t.Fatal(err)
			}
		}
		wantErr(t, st.CreateVoucher(ctx, orders.Voucher{Code: "A1", DiscountCents: 5}), socket.CodeAlreadyExists, "")
		if v, err := st.GetVoucher(ctx, "A1"); err != nil || v != (orders.Voucher{Code: "A1", DiscountCents: 200}) {
			t.Fatalf("get: %+v %v", v, err)
		}
		_, err := st.GetVoucher(ctx, "ZZ")
		wantErr(t, err, socket.CodeNotFound, "")
		for _, c := range []struct {
			after string
			limit int
			want  []orders.Voucher
		}{
			{"", 2, []orders.Voucher{{"A1", 200}, {"B2", 300}}},
			{"B2", 10, []orders.Voucher{{"C3", 100}, {"D4", 400}}},
			{"D4", 10, nil},
		} {
			got, err := st.ListVouchers(ctx, c.after, c.limit)
			if err != nil || len(got) != len(c.want) || (len(got) > 0 && !reflect.DeepEqual(got, c.want)) {
				t.Errorf("list after %q: %+v %v, want %+v", c.after, got, err, c.want)
			}
		}
		if v, err := st.UpdateVoucher(ctx, orders.Voucher{Code: "B2", DiscountCents: 999}); err != nil || v.DiscountCents != 999 {
			t.Fatalf("update: %+v %v", v, err)
		}
		if v, _ := st.GetVoucher(ctx, "B2"); v.DiscountCents != 999 {
			t.Fatalf("after update: %+v", v)
		}
		_, err = st.UpdateVoucher(ctx, orders.Voucher{Code: "ZZ", DiscountCents: 1})
		wantErr(t, err, socket.CodeNotFound, "")
		if v, err := st.DeleteVoucher(ctx, "C3"); err != nil || v != (orders.Voucher{Code: "C3", DiscountCents: 100}) {
			t.Fatalf("delete: %+v %v", v, err)
		}
		_, err = st.DeleteVoucher(ctx, "C3")
		wantErr(t, err, socket.CodeNotFound, "")
	})
}

// TestSQLStoreReopens checks that the migration is idempotent and data
// survives a new store on the same database.
func TestSQLStoreReopens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqltest.SQLite(t)
	st := sqlStore(t, db)
	if err := st.CreateVoucher(ctx, orders.Voucher{Code: "KEEP", DiscountCents: 1}); err != nil {
		t.Fatal(err)
	}
	again := sqlStore(t, db)
	if _, err := again.GetVoucher(ctx, "KEEP"); err != nil {
		t.Fatal(err)
	}
	if _, err := orders.NewSQLStore(ctx, nil); err == nil {
		t.Fatal("NewSQLStore(nil) succeeded")
	}
}
