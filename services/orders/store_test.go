package orders_test

import (
	"context"
	"errors"
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
		Version:     1,
		CreatedAt:   time.Unix(1700000000, 123456789).UTC(),
	}
}

// t0 is the stores' tests' "now"; leases run from it.
var t0 = time.Unix(1800000000, 0).UTC()

// paid pays an order through a purchase, as the service would, and
// returns it.
func paid(t *testing.T, st orders.Store, id, paymentID string) orders.Order {
	t.Helper()
	ctx := context.Background()
	o, err := st.GetOrder(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	o, err = st.BeginPurchase(ctx, o, "pur_"+paymentID, t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("begin purchase of %s: %v", id, err)
	}
	o, err = st.MarkPaid(ctx, id, orders.MarkPaidInput{PaymentID: paymentID, AmountCents: o.TotalCents, Version: o.Version, PurchaseID: o.PurchaseID})
	if err != nil {
		t.Fatalf("mark %s paid: %v", id, err)
	}
	return o
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
		wantStoreErr(t, st.CreateOrder(ctx, order("ord_1", "carol", "")), orders.ErrOrderExists)

		got, err := st.GetOrder(ctx, "ord_1")
		if want := order("ord_1", "bob", ""); err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("get: %+v %v, want %+v", got, err, want)
		}
		got.Lines[0].Quantity = 99 // the store must not share its lines
		if again, _ := st.GetOrder(ctx, "ord_1"); again.Lines[0].Quantity != 2 {
			t.Fatalf("the store shares lines with callers: %+v", again)
		}
		_, err = st.GetOrder(ctx, "ord_x")
		wantStoreErr(t, err, orders.ErrOrderNotFound)

		paid(t, st, "ord_3", "pay_1")
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

		// Conditional update: only from the version read, only while pending.
		prev := order("ord_0", "alice", "")
		next := prev
		next.Lines, next.VoucherCode, next.TotalCents = []orders.Line{{ItemID: "melon", Quantity: 3}}, "SAVE", 2900
		got, err = st.UpdatePendingOrder(ctx, prev, next, t0)
		next.Version = 2
		if err != nil || !reflect.DeepEqual(got, next) {
			t.Fatalf("update: %+v %v, want %+v", got, err, next)
		}
		if got, _ := st.GetOrder(ctx, "ord_0"); !reflect.DeepEqual(got, next) {
			t.Fatalf("after update: %+v", got)
		}
		_, err = st.UpdatePendingOrder(ctx, prev, next, t0) // prev is stale now
		wantStoreErr(t, err, orders.ErrOrderChanged)
		paid3, _ := st.GetOrder(ctx, "ord_3")
		_, err = st.UpdatePendingOrder(ctx, paid3, paid3, t0)
		wantStoreErr(t, err, orders.ErrOrderPaid)
		_, err = st.UpdatePendingOrder(ctx, order("ord_x", "alice", ""), order("ord_x", "alice", ""), t0)
		wantStoreErr(t, err, orders.ErrOrderNotFound)

		_, err = st.DeletePendingOrder(ctx, prev, t0) // stale
		wantStoreErr(t, err, orders.ErrOrderChanged)
		del, err := st.DeletePendingOrder(ctx, order("ord_4", "bob", ""), t0)
		if err != nil || !reflect.DeepEqual(del, order("ord_4", "bob", "")) {
			t.Fatalf("delete: %+v %v", del, err)
		}
		_, err = st.DeletePendingOrder(ctx, order("ord_4", "bob", ""), t0)
		wantStoreErr(t, err, orders.ErrOrderNotFound)
		_, err = st.DeletePendingOrder(ctx, paid3, t0)
		wantStoreErr(t, err, orders.ErrOrderPaid)
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
		_, err := st.MarkPaid(ctx, "a", orders.MarkPaidInput{PaymentID: "pay_a", AmountCents: 500, Version: 1, PurchaseID: "p"})
		wantStoreErr(t, err, orders.ErrOrderChanged) // pending: no purchase runs

		begun, err := st.BeginPurchase(ctx, order("a", "alice", ""), "pur_a", t0, t0.Add(time.Minute))
		if err != nil || begun.Status != orders.StatusPaying || begun.Version != 2 || begun.PurchaseID != "pur_a" || !begun.LeaseExpiresAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("begin: %+v %v", begun, err)
		}
		in := orders.MarkPaidInput{PaymentID: "pay_a", AmountCents: 500, Version: 2, PurchaseID: "pur_a"}
		for _, bad := range []struct {
			edit func(*orders.MarkPaidInput)
			want error
		}{
			{func(in *orders.MarkPaidInput) { in.Version = 1 }, orders.ErrOrderChanged},
			{func(in *orders.MarkPaidInput) { in.PurchaseID = "pur_other" }, orders.ErrOrderChanged},
			{func(in *orders.MarkPaidInput) { in.AmountCents = 499 }, orders.ErrAmountMismatch},
		} {
			in := in
			bad.edit(&in)
			_, err := st.MarkPaid(ctx, "a", in)
			wantStoreErr(t, err, bad.want)
		}
		got, err := st.MarkPaid(ctx, "a", in)
		if err != nil || got.Status != orders.StatusPaid || got.PaymentID != "pay_a" || got.Version != 3 || !got.LeaseExpiresAt.IsZero() || len(got.Lines) != 2 {
			t.Fatalf("mark paid: %+v %v", got, err)
		}
		// A retry with the same payment converges; another payment does not.
		if again, err := st.MarkPaid(ctx, "a", in); err != nil || !reflect.DeepEqual(again, got) {
			t.Fatalf("retry: %+v %v, want %+v", again, err, got)
		}
		other := in
		other.PaymentID = "pay_again"
		_, err = st.MarkPaid(ctx, "a", other)
		wantStoreErr(t, err, orders.ErrAlreadyPaid)
		if e := wantErr(t, orders.StoreError(err, "a"), socket.CodeAlreadyExists, orders.ReasonAlreadyPaid); e.Message != `order "a" is already paid` {
			t.Errorf("message: %q", e.Message)
		}
		if got, _ := st.GetOrder(ctx, "a"); got.PaymentID != "pay_a" || got.Version != 3 {
			t.Fatalf("a second MarkPaid changed the order: %+v", got)
		}
		_, err = st.MarkPaid(ctx, "x", in)
		wantStoreErr(t, err, orders.ErrOrderNotFound)

		if by, err := st.VoucherRedeemer(ctx, "V1"); err != nil || by != "" {
			t.Fatalf("redeemer before: %q %v", by, err)
		}
		paid(t, st, "b", "pay_b")
		if by, err := st.VoucherRedeemer(ctx, "V1"); err != nil || by != "b" {
			t.Fatalf("redeemer: %q %v", by, err)
		}
		// c's voucher is used: its purchase does not even begin.
		_, err = st.BeginPurchase(ctx, order("c", "bob", "V1"), "pur_c", t0, t0.Add(time.Minute))
		if used := new(orders.VoucherUsedError); !errors.As(err, &used) || used.Code != "V1" {
			t.Fatalf("BeginPurchase with a used voucher: %v, want a *VoucherUsedError for V1", err)
		}
		if got, _ := st.GetOrder(ctx, "c"); !reflect.DeepEqual(got, order("c", "bob", "V1")) {
			t.Fatalf("refused order: %+v", got)
		}
		paid(t, st, "d", "pay_d")
	})
}

// TestStorePurchase walks the purchase state machine on each store: leases,
// retries, takeovers, aborts and voucher holds.
func TestStorePurchase(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		ctx := context.Background()
		for _, o := range []orders.Order{order("a", "alice", "V"), order("b", "bob", "V"), order("c", "carol", "")} {
			if err := st.CreateOrder(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		lease := t0.Add(time.Minute)
		a, err := st.BeginPurchase(ctx, order("a", "alice", "V"), "p1", t0, lease)
		if err != nil || a.Version != 2 || a.Status != orders.StatusPaying {
			t.Fatalf("begin: %+v %v", a, err)
		}
		// The same purchase again: the lease is renewed, the version stays.
		a, err = st.BeginPurchase(ctx, a, "p1", t0.Add(time.Second), lease.Add(time.Second))
		if err != nil || a.Version != 2 || !a.LeaseExpiresAt.Equal(lease.Add(time.Second)) {
			t.Fatalf("renew: %+v %v", a, err)
		}
		lease = a.LeaseExpiresAt
		// Another purchase while the lease is live.
		_, err = st.BeginPurchase(ctx, a, "p2", t0, t0.Add(time.Minute))
		wantStoreErr(t, err, orders.ErrPurchaseInProgress)
		// Edits and deletes while the lease is live.
		next := a
		next.TotalCents = 1
		_, err = st.UpdatePendingOrder(ctx, a, next, t0)
		wantStoreErr(t, err, orders.ErrPurchaseInProgress)
		_, err = st.DeletePendingOrder(ctx, a, t0)
		wantStoreErr(t, err, orders.ErrPurchaseInProgress)
		// A stale read.
		_, err = st.BeginPurchase(ctx, order("a", "alice", "V"), "p1", t0, lease)
		wantStoreErr(t, err, orders.ErrOrderChanged)

		// b shares a's voucher: held by a under a live lease.
		_, err = st.BeginPurchase(ctx, order("b", "bob", "V"), "pb", t0, t0.Add(time.Minute))
		wantStoreErr(t, err, orders.ErrVoucherUsed)
		if got, _ := st.GetOrder(ctx, "b"); got.Status != orders.StatusPending || got.Version != 1 {
			t.Fatalf("b after a refused purchase: %+v", got)
		}

		// Aborting another purchase does nothing.
		got, aborted, err := st.AbortPurchase(ctx, "a", "p2")
		if err != nil || aborted || !reflect.DeepEqual(got, a) {
			t.Fatalf("abort of another purchase: %+v %v %v", got, aborted, err)
		}
		got, aborted, err = st.AbortPurchase(ctx, "c", "p1")
		if err != nil || aborted || got.Status != orders.StatusPending || got.Version != 1 {
			t.Fatalf("abort of a pending order: %+v %v %v", got, aborted, err)
		}
		_, _, err = st.AbortPurchase(ctx, "x", "p1")
		wantStoreErr(t, err, orders.ErrOrderNotFound)

		// After the lease: b takes the voucher over, and a is abandoned.
		after := lease.Add(time.Second)
		b, err := st.BeginPurchase(ctx, order("b", "bob", "V"), "pb", after, after.Add(time.Minute))
		if err != nil || b.Status != orders.StatusPaying || b.Version != 2 {
			t.Fatalf("b takes the voucher over: %+v %v", b, err)
		}
		if got, _ := st.GetOrder(ctx, "a"); got.Status != orders.StatusPending || got.Version != 3 || got.PurchaseID != "" || !got.LeaseExpiresAt.IsZero() {
			t.Fatalf("a after its voucher was taken over: %+v", got)
		}
		// a's stale MARK_PAID fails: the charge must be refunded.
		_, err = st.MarkPaid(ctx, "a", orders.MarkPaidInput{PaymentID: "pay_a", AmountCents: 500, Version: 2, PurchaseID: "p1"})
		wantStoreErr(t, err, orders.ErrOrderChanged)
		// a cannot begin again while b holds the voucher.
		cur, _ := st.GetOrder(ctx, "a")
		_, err = st.BeginPurchase(ctx, cur, "p3", after, after.Add(time.Minute))
		wantStoreErr(t, err, orders.ErrVoucherUsed)
		// b aborts: the voucher is free again, for a.
		got, aborted, err = st.AbortPurchase(ctx, "b", "pb")
		if err != nil || !aborted || got.Status != orders.StatusPending || got.Version != 3 {
			t.Fatalf("abort: %+v %v %v", got, aborted, err)
		}
		a, err = st.BeginPurchase(ctx, cur, "p3", after, after.Add(time.Minute))
		if err != nil || a.Version != 4 {
			t.Fatalf("a begins again: %+v %v", a, err)
		}

		// An edit after the lease abandons the purchase and lets the voucher go.
		late := after.Add(2 * time.Minute)
		next = a
		next.Lines, next.TotalCents = []orders.Line{{ItemID: "melon", Quantity: 1}}, 1000
		edited, err := st.UpdatePendingOrder(ctx, a, next, late)
		if err != nil || edited.Status != orders.StatusPending || edited.Version != 5 || edited.PurchaseID != "" || !edited.LeaseExpiresAt.IsZero() || edited.TotalCents != 1000 {
			t.Fatalf("edit after the lease: %+v %v", edited, err)
		}
		_, err = st.MarkPaid(ctx, "a", orders.MarkPaidInput{PaymentID: "pay_a", AmountCents: 500, Version: 4, PurchaseID: "p3"})
		wantStoreErr(t, err, orders.ErrOrderChanged)
		cur, _ = st.GetOrder(ctx, "b")
		if _, err := st.BeginPurchase(ctx, cur, "pb2", late, late.Add(time.Minute)); err != nil {
			t.Fatalf("the voucher after a's edit: %v", err)
		}

		// A lease that expired untouched still lets its MARK_PAID through.
		c, err := st.BeginPurchase(ctx, order("c", "carol", ""), "pc", t0, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		done, err := st.MarkPaid(ctx, "c", orders.MarkPaidInput{PaymentID: "pay_c", AmountCents: c.TotalCents, Version: c.Version, PurchaseID: "pc"})
		if err != nil || done.Status != orders.StatusPaid {
			t.Fatalf("mark paid after an untouched lease: %+v %v", done, err)
		}
		_, err = st.BeginPurchase(ctx, done, "pc", late, late.Add(time.Minute))
		wantStoreErr(t, err, orders.ErrAlreadyPaid)
		got, aborted, err = st.AbortPurchase(ctx, "c", "pc")
		if err != nil || aborted || !reflect.DeepEqual(got, done) {
			t.Fatalf("abort of a paid order: %+v %v %v", got, aborted, err)
		}

		list, err := st.ListOrders(ctx, orders.OrderQuery{Status: orders.StatusPaying, Limit: 10})
		if err != nil || !reflect.DeepEqual(ids(list), []string{"b"}) {
			t.Fatalf("paying orders: %v %v", ids(list), err)
		}
	})
}

// TestStoreConcurrentBegin starts purchases of one order under different
// purchase ids at once: exactly one wins.
func TestStoreConcurrentBegin(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st orders.Store) {
		ctx := context.Background()
		if err := st.CreateOrder(ctx, order("a", "alice", "")); err != nil {
			t.Fatal(err)
		}
		const n = 16
		errs := race(n, func(i int) error {
			_, err := st.BeginPurchase(ctx, order("a", "alice", ""), fmt.Sprintf("p%d", i), t0, t0.Add(time.Minute))
			return err
		})
		winners := 0
		for _, err := range errs {
			if err == nil {
				winners++
				continue
			}
			if !errors.Is(err, orders.ErrOrderChanged) && !errors.Is(err, orders.ErrPurchaseInProgress) {
				t.Fatalf("a losing BeginPurchase: %v", err)
			}
		}
		if winners != 1 {
			t.Fatalf("%d purchases began, want 1", winners)
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
		wantStoreErr(t, st.CreateVoucher(ctx, orders.Voucher{Code: "A1", DiscountCents: 5}), orders.ErrVoucherExists)
		if v, err := st.GetVoucher(ctx, "A1"); err != nil || v != (orders.Voucher{Code: "A1", DiscountCents: 200}) {
			t.Fatalf("get: %+v %v", v, err)
		}
		_, err := st.GetVoucher(ctx, "ZZ")
		wantStoreErr(t, err, orders.ErrVoucherNotFound)
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
		wantStoreErr(t, err, orders.ErrVoucherNotFound)
		if v, err := st.DeleteVoucher(ctx, "C3"); err != nil || v != (orders.Voucher{Code: "C3", DiscountCents: 100}) {
			t.Fatalf("delete: %+v %v", v, err)
		}
		_, err = st.DeleteVoucher(ctx, "C3")
		wantStoreErr(t, err, orders.ErrVoucherNotFound)
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

// TestSQLStoreMigratesOldSchema opens a SQLite file made by the previous
// schema (no version, purchase or lease columns, no voucher holds): its
// orders come back at version 1 and can be purchased.
func TestSQLStoreMigratesOldSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := sqltest.SQLite(t)
	for _, stmt := range []string{
		`CREATE TABLE orders (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, lines TEXT NOT NULL, voucher_code TEXT NOT NULL DEFAULT '',
			total_cents BIGINT NOT NULL, status TEXT NOT NULL, payment_id TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL)`,
		`CREATE INDEX orders_user_id ON orders (user_id, id)`,
		`CREATE TABLE vouchers (code TEXT PRIMARY KEY, discount_cents BIGINT NOT NULL)`,
		`CREATE TABLE voucher_redemptions (code TEXT PRIMARY KEY, order_id TEXT NOT NULL)`,
		`INSERT INTO orders VALUES ('old', 'alice', '[{"item_id":"apple","quantity":2}]', '', 300, 'pending', '', 1700000000000000000)`,
		`INSERT INTO orders VALUES ('old_paid', 'alice', '[{"item_id":"apple","quantity":1}]', '', 150, 'paid', 'pay_1', 1700000000000000000)`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	st := sqlStore(t, db)
	o, err := st.GetOrder(ctx, "old")
	if err != nil || o.Version != 1 || o.Status != orders.StatusPending || o.TotalCents != 300 || o.PurchaseID != "" || !o.LeaseExpiresAt.IsZero() {
		t.Fatalf("old order: %+v %v", o, err)
	}
	if p, err := st.GetOrder(ctx, "old_paid"); err != nil || p.Version != 1 || p.Status != orders.StatusPaid || p.PaymentID != "pay_1" {
		t.Fatalf("old paid order: %+v %v", p, err)
	}
	if got := paid(t, st, "old", "pay_2"); got.Version != 3 || got.Status != orders.StatusPaid {
		t.Fatalf("old order paid: %+v", got)
	}
	sqlStore(t, db) // a second start finds nothing to add
}
