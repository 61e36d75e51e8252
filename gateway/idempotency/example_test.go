package idempotency_test

import (
	"context"
	"fmt"
	"time"

	"github.com/streamgate/streamgate/gateway/idempotency"
)

// A request with a key runs under a lease; its retry gets the answer.
func Example() {
	ctx := context.Background()
	store := idempotency.NewMemory(1000, 1<<20)
	defer store.Close()
	key, _ := idempotency.ParseKey(`"order-7-attempt"`)
	id := idempotency.Scope{Principal: `"alice"`, Version: "v1", Route: "POST /v1/orders/{id}/pay", Key: key}.ID()
	fp := idempotency.Fingerprint("POST", "/v1/orders/7/pay", "", []byte(`{"card":"4242"}`))

	first, _ := store.Begin(ctx, id, fp, time.Minute)
	retry, _ := store.Begin(ctx, id, fp, time.Minute) // while the first runs
	fmt.Println(first.Outcome == idempotency.Acquired, retry.Outcome == idempotency.InUse)

	_ = store.Complete(ctx, id, first.Token, idempotency.Answer{Status: 200, Body: []byte(`{"ok":true,"result":"paid"}`)}, 24*time.Hour)
	retry, _ = store.Begin(ctx, id, fp, time.Minute)
	fmt.Println(retry.Answer.Status, string(retry.Answer.Body))
	other, _ := store.Begin(ctx, id, idempotency.Fingerprint("POST", "/v1/orders/8/pay", "", nil), time.Minute)
	fmt.Println(other.Outcome == idempotency.Mismatch)
	// Output:
	// true true
	// 200 {"ok":true,"result":"paid"}
	// true
}
