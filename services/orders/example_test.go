package orders_test

import (
	"context"
	"fmt"
	"net"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
	socketcaller "github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/status"
)

func Example() {
	srv, _ := socket.NewServer(socket.Config{Name: "orders"}, socket.WithoutAuth())
	flat := orders.PricerFunc(func(_ context.Context, ids []string) (map[string]int64, error) {
		prices := map[string]int64{}
		for _, id := range ids {
			prices[id] = 250
		}
		return prices, nil
	})
	_ = orders.Register(srv, orders.NewMemoryStore(), flat)
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, lis) }()
	defer func() { stop(); <-done }()
	c, _ := socketcaller.Dial(lis.Addr().String())
	defer c.Close()

	admin := socketcaller.ContextWithMeta(ctx, socket.Meta{Principal: socket.Principal{Subject: "root", Roles: []string{"admin"}}})
	alice := socketcaller.ContextWithMeta(ctx, socket.Meta{Principal: socket.Principal{Subject: "alice"}})
	_, _ = c.Request(admin, "CREATE_VOUCHER", "", orders.Voucher{Code: "spring", DiscountCents: 100})
	o, _ := socketcaller.Call[orders.Order](alice, c, "CREATE_ORDER", "", orders.CreateOrderInput{
		Lines:       []orders.Line{{ItemID: "tea", Quantity: 2}},
		VoucherCode: "spring",
	})
	fmt.Println(o.UserID, o.VoucherCode, o.TotalCents, o.Status, o.Version)
	// A purchase: freeze the order, charge the snapshot, complete it.
	snap, _ := socketcaller.Call[orders.Order](alice, c, "BEGIN_PURCHASE", o.ID, nil)
	fmt.Println(snap.Status, snap.Version)
	_, err := c.Request(alice, "UPDATE_ORDER", o.ID, orders.UpdateOrderInput{VoucherCode: new("")})
	fmt.Println(status.CodeOf(err), status.AsError(err).Details["reason"])
	o, _ = socketcaller.Call[orders.Order](alice, c, "MARK_PAID", o.ID, orders.MarkPaidInput{
		PaymentID: "pay_1", AmountCents: snap.TotalCents, Version: snap.Version, PurchaseID: snap.PurchaseID,
	})
	fmt.Println(o.Status, o.PaymentID, o.Version)
	_, err = c.Request(alice, "MARK_PAID", o.ID, orders.MarkPaidInput{
		PaymentID: "pay_2", AmountCents: snap.TotalCents, Version: snap.Version, PurchaseID: snap.PurchaseID,
	})
	fmt.Println(status.CodeOf(err))
	// Output:
	// alice SPRING 400 pending 1
	// paying 2
	// CONFLICT purchase_in_progress
	// paid pay_1 3
	// ALREADY_EXISTS
}
