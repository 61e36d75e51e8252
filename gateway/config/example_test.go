package config_test

import (
	"fmt"

	"github.com/streamgate/streamgate/gateway/config"
)

func ExampleParse() {
	cfg, err := config.Parse("gateway.yaml", []byte(`
services:
  users: {target: "users:9000", timeout: 2s}
versions:
  v1:
    resources:
      users:
        service: users
        crud: [get, update]
        actions:
          - {name: search, on: collection, method: GET}
`), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, rt := range cfg.Versions["v1"].Resources["users"].Routes {
		fmt.Println(rt.Method, rt.Segment, rt.Action, rt.Timeout)
	}
	// Output:
	// GET  GET_USER 2s
	// PUT  UPDATE_USER 2s
	// PATCH  UPDATE_USER 2s
	// GET search SEARCH 2s
}

func ExampleParse_errors() {
	_, err := config.Parse("gateway.yaml", []byte(`
services:
  orders: {target: "orders:9000", timeout: soon}
versions:
  v1:
    resources:
      orders: order
`), nil)
	fmt.Println(err)
	// Output:
	// gateway.yaml:3: services.orders.timeout: expected a duration such as "5s" or "1m30s", got "soon"
	// gateway.yaml:7: versions.v1.resources.orders: unknown service "order"
}
