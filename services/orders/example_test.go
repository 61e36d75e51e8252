package orders_test

import (
	"context"
	"fmt"
	"net"

	"github.com/streamgate/streamgate/services/orders"
	"github.com/streamgate/streamgate/services/socket"
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
	c, _ := socket.Dial(lis.Addr().String())
	defer c.Close()

	admin := socket.ContextWithMeta(ctx, socket.Meta{Principal: socket.Principal{Subject: "root", Roles: []string{"admin"}}})
	alice := socket.ContextWithMeta(ctx, socket.Meta{Principal: socket.Principal{Subject: "alice"}})
	_, _ = c.Request(admin, "CREATE_VOUCHER", "", orders.Voucher{Code: "spring", DiscountCents: 100})
	o, _ := socket.Call[orders.Order](alice, c, "CREATE_ORDER", "", orders.CreateOrderInput{
		Lines:       []orders.Line{{ItemID: "tea", Quantity: 2}},
		VoucherCode: "spring",
	})
	fmt.Println(o.UserID, o.VoucherCode, o.TotalCents, o.Status)
	o, _ = socket.Call[orders.Order](alice, c, "MARK_PAID", o.ID, orders.MarkPaidInput{PaymentID: "pay_1"})
	fmt.Println(o.Status, o.PaymentID)
	_, err := c.Request(alice, "MARK_PAID", o.ID, orders.MarkPaidInput{PaymentID: "pay_2"})
	fmt.Println(socket.CodeOf(err))
	// Output:
	// alice SPRING 400 pending
	// paid pay_1
	// ALREADY_EXISTS
}
