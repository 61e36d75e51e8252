package gateway_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/services/inventory"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/services/socket/sockettest"
)

// shopItemsYAML serves the real inventory's items, public and cached for
// a minute, as the stack does.
const shopItemsYAML = `
auth:
  api_keys:
    - {name: admin, secret_env: ADMIN_KEY, roles: [admin]}
services:
  inventory: {target: "${ADDR_inventory}", key_env: SERVICE_KEY}
versions:
  v1:
    resources:
      items: {service: inventory, access: anonymous, cache_ttl: 1m, visibility: public}
`

// TestWriteBypassingTheGatewayInvalidatesItsCache: a cached read, a write
// straight to the service (not through the gateway), and the next read
// through the gateway answers the new value, because the service's event
// invalidated the cached one.
func TestWriteBypassingTheGatewayInvalidatesItsCache(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, redisURL string }{
		{"local generations", ""},
		{"redis generations", os.Getenv("STREAMGATE_TEST_REDIS")},
	} {
		redisURL := tc.redisURL
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.name == "redis generations" && redisURL == "" {
				t.Skip("STREAMGATE_TEST_REDIS is not set (e.g. redis://127.0.0.1:6379/0): skipping the Redis generations case")
			}
			id := fmt.Sprintf("book-%d", time.Now().UnixNano()) // the Redis generations are shared
			keys, err := keyring.New(
				keyring.Key{Name: "gateway", Secret: serviceKey, Delegate: true},
				keyring.Key{Name: "ops", Secret: "ops-key", Roles: []string{"admin"}},
			)
			must(t, err)
			srv, err := socket.NewServer(socket.Config{Name: "inventory"}, socket.WithKeys(keys))
			must(t, err)
			must(t, inventory.Register(srv, inventory.NewMemoryStore()))
			addr := sockettest.Serve(t, srv)
			direct, err := caller.Dial(addr, caller.WithKey("ops-key"))
			must(t, err)
			t.Cleanup(func() { _ = direct.Close() })
			ctx := testCtx(t)
			if _, err := direct.Request(ctx, "CREATE_ITEM", "", map[string]any{"id": id, "name": "Book", "price_cents": 1500, "stock": 10}); err != nil {
				t.Fatal(err)
			}

			invalidated := make(chan []string, 16)
			yaml := strings.ReplaceAll(shopItemsYAML, "${ADDR_inventory}", addr)
			if redisURL != "" {
				yaml = "redis: " + redisURL + "\n" + yaml
			}
			g, err := gateway.New(parseConfig(t, yaml, nil), gateway.WithEventInvalidated(func(tags []string) { invalidated <- tags }))
			must(t, err)
			ts := serveHTTP(t, g)
			get := func(wantCache string, wantPrice int) {
				t.Helper()
				r := do(t, ts, "GET", "/v1/items/"+id, "")
				var it inventory.Item
				if r.Status != 200 || json.Unmarshal(r.Env.Result, &it) != nil || it.PriceCents != int64(wantPrice) || r.Header.Get("X-Cache") != wantCache {
					t.Fatalf("GET: %d %s X-Cache %q, want price %d X-Cache %q", r.Status, r.Raw, r.Header.Get("X-Cache"), wantPrice, wantCache)
				}
			}
			get("miss", 1500)
			get("hit", 1500)

			// Straight to the service: the gateway does not see the write.
			if _, err := direct.Request(ctx, "UPDATE_ITEM", id, map[string]any{"price_cents": 1600}); err != nil {
				t.Fatal(err)
			}
			select {
			case tags := <-invalidated:
				if !slices.Contains(tags, "inventory|items|"+id) {
					t.Fatalf("invalidated %v, want the item's tag", tags)
				}
			case <-ctx.Done():
				t.Fatal("the write's event never invalidated the cache")
			}
			get("miss", 1600)
			get("hit", 1600)
		})
	}
}
