package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// env is the environment the tests' configurations read.
func env(name string) string {
	return map[string]string{
		"MOBILE_KEY": "mobile-secret",
		"JWT_SECRET": "jwt-secret",
		"USERS_KEY":  "users-key",
	}[name]
}

// parse parses a configuration that must be valid.
func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("gateway.yaml", []byte(yaml), env)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return cfg
}

// route is what the tests compare of a route.
type route struct {
	Form     config.Form
	Segment  string
	Method   string
	Service  string
	Action   string
	Create   bool
	List     bool
	CacheTTL time.Duration
	Timeout  time.Duration
}

func routes(r *config.Resource) []route {
	var out []route
	for _, rt := range r.Routes {
		out = append(out, route{rt.Form, rt.Segment, rt.Method, rt.Service, rt.Action, rt.Create, rt.List, rt.CacheTTL, rt.Timeout})
	}
	return out
}

// crud is the full CRUD convention for a resource.
func crud(service, one, many string, cache, timeout time.Duration) []route {
	return []route{
		{config.FormItem, "", "GET", service, "GET_" + one, false, false, cache, timeout},
		{config.FormCollection, "", "GET", service, "LIST_" + many, false, true, cache, timeout},
		{config.FormCollection, "", "POST", service, "CREATE_" + one, true, false, 0, timeout},
		{config.FormItem, "", "PUT", service, "UPDATE_" + one, false, false, 0, timeout},
		{config.FormItem, "", "PATCH", service, "UPDATE_" + one, false, false, 0, timeout},
		{config.FormItem, "", "DELETE", service, "DELETE_" + one, false, false, 0, timeout},
	}
}

func TestParseExample(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("testdata/example.yaml", data, env)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}

	t.Run("http", func(t *testing.T) {
		want := config.HTTP{
			MaxBodyBytes:   2 << 20,
			MaxJSONDepth:   64,
			DefaultTimeout: 8 * time.Second,
			CORS: config.CORS{
				AllowedOrigins:   []string{"https://shop.example"},
				AllowedHeaders:   []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "X-API-Key"},
				ExposedHeaders:   []string{"X-Request-Id", "Location", "ETag", "X-Cache", "Retry-After", "Idempotent-Replayed"},
				AllowCredentials: true,
				MaxAge:           10 * time.Minute,
			},
			Idempotency:            config.IdempotencyStore{TTL: 24 * time.Hour, MaxEntries: 100_000, MaxBytes: 64 << 20},
			PaymentRequiredReasons: []string{"card_declined", "insufficient_funds", "expired_card", "invalid_card"},
		}
		if !reflect.DeepEqual(cfg.HTTP, want) {
			t.Errorf("HTTP = %+v, want %+v", cfg.HTTP, want)
		}
		if cfg.Path != "testdata/example.yaml" || cfg.Redis != "redis://cache:6379/0" {
			t.Errorf("Path, Redis = %q, %q", cfg.Path, cfg.Redis)
		}
	})

	t.Run("auth", func(t *testing.T) {
		wantKeys := []config.APIKey{
			{Name: "ci", Hash: keyring.Hash("ci-secret"), Subject: "ci", Roles: []string{"admin"}, Line: 12},
			{Name: "mobile", Hash: keyring.Hash("mobile-secret"), Subject: "mobile-app", Line: 15},
		}
		if !reflect.DeepEqual(cfg.Auth.APIKeys, wantKeys) {
			t.Errorf("APIKeys = %+v, want %+v", cfg.Auth.APIKeys, wantKeys)
		}
		wantJWT := []config.JWTIssuer{{
			Issuer: "https://id.shop.example", Audience: []string{"shop"},
			HS256Secret: []byte("jwt-secret"), RolesClaim: "roles", Leeway: 30 * time.Second, Line: 19,
		}}
		if !reflect.DeepEqual(cfg.Auth.JWT, wantJWT) {
			t.Errorf("JWT = %+v, want %+v", cfg.Auth.JWT, wantJWT)
		}
	})

	t.Run("services", func(t *testing.T) {
		want := map[string]*config.Service{
			"users":    {Name: "users", Target: "dns:///users:9000", Key: "users-key", Timeout: 3 * time.Second, Line: 24},
			"orders":   {Name: "orders", Target: "static:///orders-1:9000,orders-2:9000", Line: 28},
			"payments": {Name: "payments", Target: "payments:9000", Timeout: 20 * time.Second, Line: 30},
		}
		if !reflect.DeepEqual(cfg.Services, want) {
			t.Errorf("Services = %+v, want %+v", cfg.Services, want)
		}
	})

	v1, v2 := cfg.Versions["v1"], cfg.Versions["v2"]
	if len(cfg.Versions) != 2 || v1 == nil || v2 == nil || v1.Line != 37 || v2.Line != 46 {
		t.Fatalf("Versions = %+v", cfg.Versions)
	}
	customers := config.Access{Roles: []string{"customer", "admin"}}
	tests := []struct {
		name     string
		res      *config.Resource
		singular string
		line     int
		routes   []route
		access   config.Access
	}{
		{
			name: "v1 users, one line", res: v1.Resources["users"], singular: "user", line: 39,
			routes: crud("users", "USER", "USERS", 0, 3*time.Second),
		},
		{
			name: "v1 orders, crud subset and an action", res: v1.Resources["orders"], singular: "order", line: 40,
			routes: append(crud("orders", "ORDER", "ORDERS", 0, 8*time.Second)[:3],
				route{config.FormItemAction, "cancel", "POST", "orders", "CANCEL", false, false, 0, 8 * time.Second}),
			access: customers,
		},
		{
			name: "v2 users, inherited from v1", res: v2.Resources["users"], singular: "user", line: 39,
			routes: crud("users", "USER", "USERS", 0, 3*time.Second),
		},
		{
			name: "v2 orders, replacing v1's", res: v2.Resources["orders"], singular: "order", line: 49,
			routes: append(crud("orders", "ORDER", "ORDERS", 30*time.Second, 8*time.Second),
				route{config.FormCollectionAction, "search", "GET", "orders", "SEARCH", false, false, 5 * time.Second, 8 * time.Second},
				route{config.FormCollectionAction, "search", "POST", "orders", "SEARCH", false, false, 5 * time.Second, 8 * time.Second},
				route{config.FormItemAction, "pay", "POST", "orders", "PAY", false, false, 0, 25 * time.Second}),
		},
		{
			name: "v2 payments", res: v2.Resources["payments"], singular: "payment", line: 77,
			routes: crud("payments", "PAYMENT", "PAYMENTS", 0, 20*time.Second)[:2],
			access: config.Access{Anonymous: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.res == nil {
				t.Fatal("resource missing")
			}
			if tt.res.Singular != tt.singular || tt.res.Line != tt.line {
				t.Errorf("Singular, Line = %q, %d; want %q, %d", tt.res.Singular, tt.res.Line, tt.singular, tt.line)
			}
			if got := routes(tt.res); !reflect.DeepEqual(got, tt.routes) {
				t.Errorf("routes:\n got %+v\nwant %+v", got, tt.routes)
			}
			for _, rt := range tt.res.Routes {
				if !reflect.DeepEqual(rt.Access, tt.access) {
					t.Errorf("%s %s access = %+v, want %+v", rt.Method, rt.Action, rt.Access, tt.access)
				}
			}
		})
	}
	if n := len(v1.Resources) + len(v2.Resources); n != 5 {
		t.Errorf("%d resources, want 5", n)
	}

	t.Run("pipeline", func(t *testing.T) {
		pay, _ := v2.Resources["orders"].Lookup(config.FormItemAction, "pay", "POST")
		if pay == nil {
			t.Fatal("no POST pay route")
		}
		want := []step{
			{Line: 60, Parallel: []step{
				{Name: "check_purchasable", Service: "orders", Action: "CHECK_PURCHASABLE", ID: "${path.id}", Line: 61},
				{Name: "check_voucher", Service: "orders", Action: "CHECK_VOUCHER", Line: 63,
					Body: `{"code":"${body.voucher}","subject":"${caller.subject}"}`},
			}},
			{Name: "charge", Service: "payments", Action: "PAY", ID: "${path.id}", Line: 65,
				Body: `{"amount":"${check_purchasable.total}","attempts":3,"currency":"EUR","gift":false,"note":"order ${path.id} for ${caller.subject}","ratio":0.5}`},
		}
		if got := steps(pay.Pipeline); !reflect.DeepEqual(got, want) {
			t.Errorf("pipeline:\n got %+v\nwant %+v", got, want)
		}
		if pay.Result != "charge" || pay.Line != 57 {
			t.Errorf("Result, Line = %q, %d", pay.Result, pay.Line)
		}
	})
}

// step is what the tests compare of a step: its templates as written.
type step struct {
	Name, Service, Action string
	ID, Body              string // Template.String; "" when absent
	Parallel              []step
	Line                  int
}

func steps(list []*config.Step) []step {
	var out []step
	for _, s := range list {
		out = append(out, step{s.Name, s.Service, s.Action, source(s.ID), source(s.Body), steps(s.Parallel), s.Line})
	}
	return out
}

// source is a template as written, "" when absent.
func source(t *config.Template) string {
	if t == nil {
		return ""
	}
	return t.String()
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
services:
  users: {target: "users:9000"}
versions:
  v1:
    resources:
      users: users
`)
	if cfg.HTTP.MaxBodyBytes != 1<<20 || cfg.HTTP.MaxJSONDepth != 64 || cfg.HTTP.DefaultTimeout != 10*time.Second {
		t.Errorf("HTTP = %+v", cfg.HTTP)
	}
	if c := cfg.HTTP.CORS; len(c.AllowedOrigins) != 0 || c.MaxAge != 10*time.Minute || c.AllowCredentials ||
		len(c.AllowedHeaders) != 5 || len(c.ExposedHeaders) != 6 {
		t.Errorf("CORS = %+v", c)
	}
	if cfg.Redis != "" || len(cfg.Auth.APIKeys) != 0 || len(cfg.Auth.JWT) != 0 {
		t.Errorf("Redis, Auth = %q, %+v", cfg.Redis, cfg.Auth)
	}
	if i := cfg.HTTP.Idempotency; i.TTL != 24*time.Hour || i.MaxEntries != 100_000 || i.MaxBytes != 64<<20 {
		t.Errorf("Idempotency = %+v", i)
	}
	if r := cfg.HTTP.PaymentRequiredReasons; !reflect.DeepEqual(r, []string{"card_declined", "insufficient_funds", "expired_card", "invalid_card"}) {
		t.Errorf("PaymentRequiredReasons = %q", r)
	}
	users := cfg.Versions["v1"].Resources["users"]
	if got, want := routes(users), crud("users", "USER", "USERS", 0, 10*time.Second); !reflect.DeepEqual(got, want) {
		t.Errorf("routes:\n got %+v\nwant %+v", got, want)
	}
	for _, rt := range users.Routes {
		if rt.Access.Anonymous || rt.Access.Roles != nil || rt.Pipeline != nil || rt.Result != "" || rt.Line != 7 {
			t.Errorf("route %+v", rt)
		}
	}
}

func TestParseIdempotency(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
http:
  idempotency: {ttl: 1h, max_entries: 10, max_bytes: 2048}
services:
  users: {target: "users:9000"}
versions:
  v1:
    resources:
      users: users
      orders:
        service: users
        idempotency: required
        actions:
          - {name: pay}
          - {name: peek, method: GET}
          - {name: note, methods: [GET, POST], idempotency: off}
`)
	if i := cfg.HTTP.Idempotency; i.TTL != time.Hour || i.MaxEntries != 10 || i.MaxBytes != 2048 {
		t.Errorf("Idempotency = %+v", i)
	}
	want := map[string]config.Idempotency{
		"users GET /users/{id}": config.IdempotencyOff, "users GET /users": config.IdempotencyOff,
		"users POST /users": config.IdempotencyOptional, "users PUT /users/{id}": config.IdempotencyOptional,
		"users DELETE /users/{id}": config.IdempotencyOptional,
		"orders GET /orders/{id}":  config.IdempotencyOff, "orders POST /orders": config.IdempotencyRequired,
		"orders PATCH /orders/{id}": config.IdempotencyRequired, "orders POST /orders/{id}/pay": config.IdempotencyRequired,
		"orders GET /orders/{id}/peek": config.IdempotencyOff, "orders GET /orders/{id}/note": config.IdempotencyOff,
		"orders POST /orders/{id}/note": config.IdempotencyOff,
	}
	for _, res := range cfg.Versions["v1"].Resources {
		for _, rt := range res.Routes {
			path := "/" + res.Name
			switch rt.Form {
			case config.FormItem:
				path += "/{id}"
			case config.FormItemAction:
				path += "/{id}/" + rt.Segment
			}
			key := res.Name + " " + rt.Method + " " + path
			if w, ok := want[key]; ok && rt.Idempotency != w {
				t.Errorf("%s: idempotency %q, want %q", key, rt.Idempotency, w)
			}
			if rt.Idempotency == "" {
				t.Errorf("%s: no idempotency mode", key)
			}
		}
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# nothing yet\n", "{}", "versions:\n"} {
		cfg := parse(t, doc)
		if len(cfg.Versions) != 0 || len(cfg.Services) != 0 || cfg.HTTP.DefaultTimeout != 10*time.Second {
			t.Errorf("%q: %+v", doc, cfg)
		}
	}
}

func TestParseSingular(t *testing.T) {
	t.Parallel()
	tests := []struct {
		resource, singular string // singular: the YAML value, or "" for none
		one, many          string
	}{
		{"items", "", "ITEM", "ITEMS"},
		{"categories", "", "CATEGORY", "CATEGORIES"},
		{"addresses", "", "ADDRESS", "ADDRESSES"},
		{"boxes", "", "BOX", "BOXES"},
		{"payments", "", "PAYMENT", "PAYMENTS"},
		{"line-items", "", "LINE_ITEM", "LINE_ITEMS"},
		{"stock_levels", "", "STOCK_LEVEL", "STOCK_LEVELS"},
		{"inventory", "", "INVENTORY", "INVENTORY"},
		{"people", "person", "PERSON", "PEOPLE"},
		{"status", "status", "STATUS", "STATUS"},
	}
	for _, tt := range tests {
		t.Run(tt.resource, func(t *testing.T) {
			t.Parallel()
			singular := ""
			if tt.singular != "" {
				singular = "singular: " + tt.singular
			}
			cfg := parse(t, `
services: {shop: {target: "shop:9000"}}
versions:
  v1:
    resources:
      `+tt.resource+`: {service: shop, crud: [get, list], `+singular+`}
`)
			got := routes(cfg.Versions["v1"].Resources[tt.resource])
			if len(got) != 2 || got[0].Action != "GET_"+tt.one || got[1].Action != "LIST_"+tt.many {
				t.Errorf("routes = %+v, want GET_%s and LIST_%s", got, tt.one, tt.many)
			}
		})
	}
}

func TestParseActions(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
http: {default_timeout: 4s}
services:
  orders: {target: "orders:9000", timeout: 2s}
  stock: {target: "stock:9000", timeout: 6s}
  mail: {target: "mail:9000"}
versions:
  v1:
    resources:
      orders:
        service: orders
        crud: []
        cache_ttl: 1m
        actions:
          - name: check-purchasable
            method: GET
          - {name: reserve, service: stock}
          - {name: notify, service: mail, methods: [PUT, DELETE], access: anonymous}
          - {name: export, on: collection, action: EXPORT_ALL, timeout: 30s, cache_ttl: 0s, access: {roles: [ops]}}
          - {name: export, on: item, method: GET}
      payments:
        service: stock
        timeout: 9s
        crud: [get]
        actions:
          - {name: refund, service: orders, cache_ttl: 2s}
`)
	orders := cfg.Versions["v1"].Resources["orders"]
	want := []route{
		{config.FormItemAction, "check-purchasable", "GET", "orders", "CHECK_PURCHASABLE", false, false, time.Minute, 2 * time.Second},
		{config.FormItemAction, "reserve", "POST", "stock", "RESERVE", false, false, 0, 6 * time.Second},
		{config.FormItemAction, "notify", "PUT", "mail", "NOTIFY", false, false, 0, 4 * time.Second},
		{config.FormItemAction, "notify", "DELETE", "mail", "NOTIFY", false, false, 0, 4 * time.Second},
		{config.FormCollectionAction, "export", "POST", "orders", "EXPORT_ALL", false, false, 0, 30 * time.Second},
		{config.FormItemAction, "export", "GET", "orders", "EXPORT", false, false, time.Minute, 2 * time.Second},
	}
	if got := routes(orders); !reflect.DeepEqual(got, want) {
		t.Errorf("orders:\n got %+v\nwant %+v", got, want)
	}
	if a := orders.Routes[2].Access; !a.Anonymous {
		t.Errorf("notify access = %+v", a)
	}
	if a := orders.Routes[4].Access; !reflect.DeepEqual(a, config.Access{Roles: []string{"ops"}}) {
		t.Errorf("export access = %+v", a)
	}
	if !orders.HasCollectionAction("export") || orders.HasCollectionAction("reserve") {
		t.Error("HasCollectionAction")
	}
	payments := cfg.Versions["v1"].Resources["payments"]
	want = []route{
		{config.FormItem, "", "GET", "stock", "GET_PAYMENT", false, false, 0, 9 * time.Second},
		{config.FormItemAction, "refund", "POST", "orders", "REFUND", false, false, 2 * time.Second, 9 * time.Second},
	}
	if got := routes(payments); !reflect.DeepEqual(got, want) {
		t.Errorf("payments:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseExtends(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
services:
  users: {target: "users:9000"}
  orders: {target: "orders:9000"}
versions:
  v3:
    extends: v2
    resources:
      users: {service: users, crud: [get]}
  v1:
    resources:
      users: users
      orders:
        service: orders
        crud: [get]
        access: {roles: [admin]}
        actions:
          - name: pay
            pipeline:
              - {action: CHECK, body: {items: [{sku: a}]}}
              - {action: PAY}
  v2:
    extends: v1
`)
	v1, v2, v3 := cfg.Versions["v1"], cfg.Versions["v2"], cfg.Versions["v3"]
	for _, v := range []*config.Version{v1, v2, v3} {
		if len(v.Resources) != 2 {
			t.Fatalf("%s has %d resources, want 2", v.Name, len(v.Resources))
		}
	}
	if got := len(v3.Resources["users"].Routes); got != 1 {
		t.Errorf("v3 users has %d routes, want its own 1", got)
	}
	if got := len(v2.Resources["users"].Routes); got != 6 {
		t.Errorf("v2 users has %d routes, want v1's 6", got)
	}
	for _, v := range []*config.Version{v2, v3} {
		if !reflect.DeepEqual(v.Resources["orders"], v1.Resources["orders"]) {
			t.Errorf("%s orders differs from v1's", v.Name)
		}
	}

	// Changing one version's copy leaves the others as they were.
	pay, _ := v3.Resources["orders"].Lookup(config.FormItemAction, "pay", "POST")
	pay.Access.Roles[0] = "changed"
	pay.Pipeline[1].Action = "CHANGED"
	v3.Resources["orders"].Routes[0].Action = "CHANGED"
	for _, v := range []*config.Version{v1, v2} {
		orders := v.Resources["orders"]
		pay, _ := orders.Lookup(config.FormItemAction, "pay", "POST")
		if pay.Access.Roles[0] != "admin" || pay.Pipeline[1].Action != "PAY" || orders.Routes[0].Action != "GET_ORDER" {
			t.Errorf("%s changed with v3", v.Name)
		}
	}
}

func TestParsePipeline(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
services:
  orders: {target: "orders:9000"}
  stock: {target: "stock:9000"}
versions:
  v1:
    resources:
      orders:
        service: orders
        crud: []
        actions:
          - name: checkout
            on: collection
            service: stock
            pipeline:
              - as: basket
                action: GET_BASKET
                id: ${caller.subject}
              - parallel:
                  - {action: RESERVE, body: "${basket.items}"}
                  - {action: PRICE, service: orders, body: {items: "${basket.items}", who: "${caller.roles}", n: 1.5e3, big: 9007199254740993, none: null, when: 2026-01-02}}
            result: price
          - name: summary
            method: GET
            pipeline:
              - {action: GET_ORDER, id: "${path.id}"}
              - {as: lines, action: LIST_LINES, body: {order: "${get_order}", all: "${body}"}}
`)
	orders := cfg.Versions["v1"].Resources["orders"]
	checkout, _ := orders.Lookup(config.FormCollectionAction, "checkout", "POST")
	summary, _ := orders.Lookup(config.FormItemAction, "summary", "GET")
	if checkout == nil || summary == nil {
		t.Fatalf("routes: %+v", routes(orders))
	}
	if checkout.Result != "price" || checkout.Service != "stock" || summary.Result != "lines" || summary.Service != "orders" {
		t.Errorf("Result, Service = %q %q, %q %q", checkout.Result, checkout.Service, summary.Result, summary.Service)
	}
	group := checkout.Pipeline[1].Parallel
	if len(checkout.Pipeline) != 2 || len(group) != 2 {
		t.Fatalf("checkout pipeline: %+v", steps(checkout.Pipeline))
	}
	if s := checkout.Pipeline[0]; s.Name != "basket" || s.Service != "stock" || source(s.ID) != "${caller.subject}" {
		t.Errorf("step 0 = %+v", s)
	}
	if s := group[0]; s.Name != "reserve" || s.Service != "stock" || source(s.Body) != "${basket.items}" {
		t.Errorf("reserve = %+v", s)
	}
	wantBody := `{"big":9007199254740993,"items":"${basket.items}","n":1500,"none":null,"when":"2026-01-02","who":"${caller.roles}"}`
	if s := group[1]; s.Name != "price" || s.Service != "orders" || source(s.Body) != wantBody {
		t.Errorf("price = %+v, body %s", s, source(s.Body))
	}
}

func TestParseAliases(t *testing.T) {
	t.Parallel()
	cfg := parse(t, `
services:
  users: &svc {target: "users:9000", timeout: 2s}
  admins: *svc
versions:
  v1:
    resources:
      users: &res {service: users, access: &admin {roles: [admin]}, crud: [get]}
      admins: {service: admins, access: *admin, crud: [get]}
  v2:
    resources:
      users: *res
`)
	if cfg.Services["admins"].Timeout != 2*time.Second || cfg.Services["admins"].Name != "admins" {
		t.Errorf("admins = %+v", cfg.Services["admins"])
	}
	for _, rt := range []*config.Route{
		cfg.Versions["v1"].Resources["admins"].Routes[0],
		cfg.Versions["v2"].Resources["users"].Routes[0],
	} {
		if !reflect.DeepEqual(rt.Access.Roles, []string{"admin"}) {
			t.Errorf("%s access = %+v", rt.Action, rt.Access)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !os.IsNotExist(err) {
		t.Errorf("err = %v, want not exist", err)
	}
}

func TestParseNATSTransport(t *testing.T) {
	cfg := parse(t, `
services:
  notes:
    transport: nats
    nats_url: nats://127.0.0.1:4222
    key: notes-key
  shop:
    transport: nats
    target: shop-v2
    nats_url: tls://nats.internal:4222
  users:
    target: users:9000
    transport: stream
`)
	want := map[string]config.Service{
		"notes": {Name: "notes", Target: "notes", Key: "notes-key", Transport: config.TransportNATS, NATSURL: "nats://127.0.0.1:4222", Line: 3},
		"shop":  {Name: "shop", Target: "shop-v2", Transport: config.TransportNATS, NATSURL: "tls://nats.internal:4222", Line: 7},
		"users": {Name: "users", Target: "users:9000", Line: 11},
	}
	for name, w := range want {
		got := cfg.Services[name]
		if got == nil || got.TLS != nil || *got != w {
			t.Errorf("services.%s = %+v; want %+v", name, got, w)
		}
	}
}

// The events block: the defaults (root, one window per resource), and
// windows as written.
func TestParseEvents(t *testing.T) {
	t.Run("absent", func(t *testing.T) {
		if cfg := parse(t, "services:\n  users: {target: users:9000}\n"); cfg.Events != nil {
			t.Errorf("Events = %+v; want nil", cfg.Events)
		}
	})
	t.Run("defaults", func(t *testing.T) {
		cfg := parse(t, `
services:
  shop: {target: shop:9000}
versions:
  v1:
    resources:
      orders: shop
      items: shop
  v2:
    resources:
      orders: shop
events:
  nats_url: nats://127.0.0.1:4222
`)
		want := &config.Events{NATSURL: "nats://127.0.0.1:4222", Root: "streamgate.events", Replicas: 1, Windows: []config.EventWindow{
			{Prefix: "items", MaxAge: time.Hour, MaxBytes: 64 << 20},
			{Prefix: "orders", MaxAge: time.Hour, MaxBytes: 64 << 20},
		}}
		if !reflect.DeepEqual(cfg.Events, want) {
			t.Errorf("Events = %+v; want %+v", cfg.Events, want)
		}
	})
	t.Run("written", func(t *testing.T) {
		cfg := parse(t, `
events:
  nats_url: tls://nats.internal:4222
  root: shop.events
  replicas: 3
  windows:
    - {prefix: orders, max_age: 10m, max_bytes: 1024}
    - {prefix: items/eu}
`)
		want := &config.Events{NATSURL: "tls://nats.internal:4222", Root: "shop.events", Replicas: 3, Windows: []config.EventWindow{
			{Prefix: "orders", MaxAge: 10 * time.Minute, MaxBytes: 1024},
			{Prefix: "items/eu", MaxAge: time.Hour, MaxBytes: 64 << 20},
		}}
		if !reflect.DeepEqual(cfg.Events, want) {
			t.Errorf("Events = %+v; want %+v", cfg.Events, want)
		}
	})
}
