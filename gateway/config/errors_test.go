package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// base declares two services and opens v1's resources, which start at
// line 7.
const base = `services:
  users: {target: "users:9000"}
  orders: {target: "orders:9000"}
versions:
  v1:
    resources:
`

// actions is base with an orders resource whose actions start at line 11.
func actions(list string) string {
	return base + `      orders:
        service: orders
        crud: []
        actions:
` + list
}

// pipeline is actions with a "pay" action whose steps start at line 13.
func pipeline(steps string) string {
	return actions(`          - name: pay
            pipeline:
` + steps)
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		line int
		path string
		want string // a fragment of the problem
	}{
		// YAML itself.
		{"syntax", "http:\n  a: 1\n   b: 2\n", 3, "", "mapping values are not allowed"},
		{"not a mapping", "- http\n", 1, "", "expected a mapping, got a list"},
		{"unknown top-level key", "http: {}\nhtp: {}\n", 2, "", `unknown key "htp"`},
		{"repeated key", "redis: redis://a:1\nredis: redis://b:1\n", 2, "", `key "redis" is repeated (first at line 1)`},
		{"alias cycle", "http: &a {cors: *a}\n", 1, "", "alias to itself"},
		{"empty key", "http: {}\n: x\n", 2, "", `unknown key ""`},
		{"null key", "services:\n  ~: {target: a}\n", 2, "services.~", "service name must be"},
		{"merge key", "http: &h {max_json_depth: 3}\nauth: {<<: *h}\n", 2, "auth", "merge keys"},

		// http.
		{"unknown http key", "http:\n  max_body: 1\n", 2, "http", `unknown key "max_body"`},
		{"max body not a number", "http: {max_body_bytes: lots}\n", 1, "http.max_body_bytes", `expected an integer, got "lots"`},
		{"json depth zero", "http:\n  max_json_depth: 0\n", 2, "http.max_json_depth", "must be between 1 and"},
		{"timeout not a duration", "http:\n  default_timeout: abc\n", 2, "http.default_timeout", `expected a duration such as "5s"`},
		{"timeout without unit", "http:\n  default_timeout: 5\n", 2, "http.default_timeout", `got "5"`},
		{"timeout zero", "http:\n  default_timeout: 0s\n", 2, "http.default_timeout", "must be positive"},
		{"cors origins not a list", "http:\n  cors:\n    allowed_origins: {a: b}\n", 3, "http.cors.allowed_origins", "expected a list, got a mapping"},
		{"payment required reason not a word", "http:\n  payment_required_reasons: [card_declined, Card Stolen]\n", 2, "http.payment_required_reasons", `reason "Card Stolen": want a lower_snake word`},
		{"payment required reasons not a list", "http:\n  payment_required_reasons: card_declined\n", 2, "http.payment_required_reasons", "expected a list"},
		{"cors credentials for any origin", "http:\n  cors:\n    allowed_origins: ['*']\n    allow_credentials: true\n", 4, "http.cors.allow_credentials", "every origin"},
		{"cors credentials not a bool", "http:\n  cors:\n    allow_credentials: maybe\n", 3, "http.cors.allow_credentials", "expected true or false"},
		{"cors max age negative", "http:\n  cors: {max_age: -1s}\n", 2, "http.cors.max_age", "must be positive"},
		{"idempotency ttl not a duration", "http:\n  idempotency: {ttl: forever}\n", 2, "http.idempotency.ttl", `expected a duration such as "5s"`},
		{"idempotency max entries zero", "http:\n  idempotency:\n    max_entries: 0\n", 3, "http.idempotency.max_entries", "must be between 1 and"},
		{"idempotency unknown key", "http:\n  idempotency: {size: 3}\n", 2, "http.idempotency", `unknown key "size"`},
		{"cors unknown key", "http:\n  cors:\n    allowed_origin: [a]\n", 3, "http.cors", `unknown key "allowed_origin"`},
		{"auth unknown key", "auth:\n  apikeys: []\n", 2, "auth", `unknown key "apikeys"`},
		{"api key unknown key", "auth:\n  api_keys:\n    - {name: a, secret_env: MOBILE_KEY, role: [x]}\n", 3, "auth.api_keys[0]", `unknown key "role"`},
		{"jwt unknown key", "auth:\n  jwt:\n    - issuer: me\n      hs256_secret_env: JWT_SECRET\n      audiences: [x]\n", 5, "auth.jwt[0]", `unknown key "audiences"`},
		{"redis not a URL", "redis: cache:6379\n", 1, "redis", "redis://host:6379/0"},
		{"redis password not repeated", "redis: http://user:hunter2@cache\n", 1, "redis", "expected a URL"},

		// auth.
		{"api key without name", "auth:\n  api_keys:\n    - hash: sha256:" + strings.Repeat("a", 64) + "\n", 3, "auth.api_keys[0]", "name is required"},
		{"api key with hash and secret", "auth:\n  api_keys:\n    - {name: a, hash: 'sha256:" + strings.Repeat("a", 64) + "', secret_env: MOBILE_KEY}\n", 3, "auth.api_keys[0]", "not both"},
		{"api key with neither", "auth:\n  api_keys:\n    - name: a\n", 3, "auth.api_keys[0]", "hash or secret_env is required"},
		{"api key hash malformed", "auth:\n  api_keys:\n    - name: a\n      hash: sha256:abc\n", 4, "auth.api_keys[0].hash", `"sha256:" and 64 hex digits`},
		{"api key hash other algorithm", "auth:\n  api_keys:\n    - name: a\n      hash: md5:" + strings.Repeat("a", 64) + "\n", 4, "auth.api_keys[0].hash", "64 hex digits"},
		{"api key env unset", "auth:\n  api_keys:\n    - name: a\n      secret_env: GW_MISSING\n", 4, "auth.api_keys[0].secret_env", "environment variable GW_MISSING is unset or empty"},
		{"api key names repeated", "auth:\n  api_keys:\n    - {name: a, secret_env: MOBILE_KEY}\n    - {name: a, secret_env: JWT_SECRET}\n", 4, "auth.api_keys[1]", `name "a" is used twice (first at line 3)`},
		{"api keys the same", "auth:\n  api_keys:\n    - {name: a, secret_env: MOBILE_KEY}\n    - {name: b, secret_env: MOBILE_KEY}\n", 4, "auth.api_keys[1]", "same key as the one at line 3"},
		{"api key not a mapping", "auth:\n  api_keys: [ci]\n", 2, "auth.api_keys[0]", `expected a mapping, got "ci"`},
		{"api key null", "auth:\n  api_keys: [~]\n", 2, "auth.api_keys[0]", "expected a mapping, got null"},
		{"api key roles not a list", "auth:\n  api_keys:\n    - {name: a, secret_env: MOBILE_KEY, roles: admin}\n", 3, "auth.api_keys[0].roles", "expected a list"},
		{"jwt without issuer", "auth:\n  jwt:\n    - hs256_secret_env: JWT_SECRET\n", 3, "auth.jwt[0]", "issuer is required"},
		{"jwt without key", "auth:\n  jwt:\n    - issuer: me\n", 3, "auth.jwt[0]", "hs256_secret_env or public_key_files is required"},
		{"jwt secret unset", "auth:\n  jwt:\n    - issuer: me\n      hs256_secret_env: NOPE\n", 4, "auth.jwt[0].hs256_secret_env", "environment variable NOPE is unset or empty"},
		{"jwt key file missing", "auth:\n  jwt:\n    - issuer: me\n      public_key_files: [testdata/none.pem]\n", 4, "auth.jwt[0].public_key_files[0]", "no such file"},
		{"jwt key file not regular", "auth:\n  jwt:\n    - issuer: me\n      public_key_files: [.]\n", 4, "auth.jwt[0].public_key_files[0]", "not a regular file"},
		{"jwt key file not PEM", "auth:\n  jwt:\n    - issuer: me\n      public_key_files: [example.yaml]\n", 4, "auth.jwt[0].public_key_files[0]", "example.yaml: no PEM block"},
		{"jwt leeway", "auth:\n  jwt:\n    - {issuer: me, hs256_secret_env: JWT_SECRET, leeway: soon}\n", 3, "auth.jwt[0].leeway", "expected a duration"},
		{"jwt issuer repeated", "auth:\n  jwt:\n    - {issuer: me, hs256_secret_env: JWT_SECRET}\n    - {issuer: me, hs256_secret_env: JWT_SECRET}\n", 4, "auth.jwt[1]", `issuer "me" is listed twice`},

		// services.
		{"anchor used twice", "services:\n  users: &svc {target: a, timeout: 0s}\n  admins: *svc\n", 2, "services.users.timeout", "must be positive"},
		{"transport unknown", "services:\n  users:\n    target: users:9000\n    transport: kafka\n", 4, "services.users.transport", `expected stream or nats, got "kafka"`},
		{"nats without url", "services:\n  users:\n    transport: nats\n", 3, "services.users.transport", "transport: nats needs nats_url"},
		{"nats url without nats", "services:\n  users:\n    target: users:9000\n    nats_url: nats://127.0.0.1:4222\n", 4, "services.users.nats_url", "nats_url needs transport: nats"},
		{"nats url not a URL", "services:\n  users:\n    transport: nats\n    nats_url: http://u:hunter2@nats:4222\n", 4, "services.users.nats_url", `expected a URL such as "nats://127.0.0.1:4222"`},
		{"nats with tls", "services:\n  users:\n    transport: nats\n    nats_url: nats://127.0.0.1:4222\n    tls: {ca_file: ca.pem}\n", 5, "services.users.tls", "takes TLS from nats_url"},
		// events.
		{"events without url", "events:\n  root: a.b\n", 2, "events", "nats_url is required"},
		{"events url not a URL", "events:\n  nats_url: redis://127.0.0.1:4222\n", 2, "events.nats_url", `expected a URL such as "nats://127.0.0.1:4222"`},
		{"events root wildcard", "events:\n  nats_url: nats://127.0.0.1:4222\n  root: a.>\n", 3, "events.root", "without wildcards"},
		{"events windows empty", "events:\n  nats_url: nats://127.0.0.1:4222\n  windows: []\n", 3, "events.windows", "lists no windows"},
		{"events replicas", "events:\n  nats_url: nats://127.0.0.1:4222\n  replicas: 7\n", 3, "events.replicas", "must be between 1 and 5, got 7"},
		{"events window without prefix", "events:\n  nats_url: nats://127.0.0.1:4222\n  windows:\n    - max_age: 1m\n", 4, "events.windows[0]", "prefix is required"},
		{"events window prefix", "events:\n  nats_url: nats://127.0.0.1:4222\n  windows:\n    - prefix: orders//a\n", 4, "events.windows[0].prefix", "topic segments"},
		{"events window age", "events:\n  nats_url: nats://127.0.0.1:4222\n  windows:\n    - {prefix: orders, max_age: 0s}\n", 4, "events.windows[0].max_age", "must be positive"},
		{"events window bytes", "events:\n  nats_url: nats://127.0.0.1:4222\n  windows:\n    - {prefix: orders, max_bytes: 0}\n", 4, "events.windows[0].max_bytes", "must be between 1"},
		{"events windows overlap", "events:\n  nats_url: nats://127.0.0.1:4222\n  windows:\n    - {prefix: orders}\n    - {prefix: orders/eu}\n", 5, "events.windows[1].prefix", `windows "orders" and "orders/eu" overlap (the other at line 4)`},
		{"service without target", "services:\n  users: {timeout: 1s}\n", 2, "services.users", "target is required"},
		{"service empty", "services:\n  users:\n", 2, "services.users", "target is required"},
		{"service target empty", "services:\n  users: {target: ''}\n", 2, "services.users.target", "must not be empty"},
		{"service address list empty", "services:\n  users:\n    target: []\n", 3, "services.users.target", "lists no addresses"},
		{"service address without port", "services:\n  users:\n    target: [a:1, b]\n", 3, "services.users.target[1]", `expected an address such as "users:9000", got "b"`},
		{"service key twice", "services:\n  users: {target: a, key: k, key_env: USERS_KEY}\n", 2, "services.users", "set key_env or key, not both"},
		{"service key env unset", "services:\n  users:\n    target: a\n    key_env: USERS_TOKEN\n", 4, "services.users.key_env", "environment variable USERS_TOKEN is unset or empty"},
		{"service timeout", "services:\n  users: {target: a, timeout: 0s}\n", 2, "services.users.timeout", "must be positive"},
		{"service name", "services:\n  Users: {target: a}\n", 2, "services.Users", "service name must be lowercase letters"},
		{"service unknown key", "services:\n  users: {target: a, retries: 3}\n", 2, "services.users", `unknown key "retries"`},

		// versions.
		{"version name", "versions:\n  V1: {}\n", 2, "versions.V1", "version name must be"},
		{"version unknown key", "versions:\n  v1: {routes: {}}\n", 2, "versions.v1", `unknown key "routes"`},
		{"extends unknown", "versions:\n  v2:\n    extends: v0\n", 3, "versions.v2.extends", `unknown version "v0"`},
		{"extends itself", "versions:\n  v1:\n    extends: v1\n", 3, "versions.v1.extends", "extends cycle: v1 → v1"},

		// resources.
		{"resource one-line unknown service", base + "      orders: order\n", 7, "versions.v1.resources.orders", `unknown service "order"`},
		{"resource unknown service", base + "      orders:\n        service: order\n", 8, "versions.v1.resources.orders.service", `unknown service "order"`},
		{"resource without service", base + "      orders: {crud: [get]}\n", 7, "versions.v1.resources.orders", "service is required"},
		{"resource empty", base + "      orders:\n", 7, "versions.v1.resources.orders", "expected a service name or a mapping"},
		{"resource list", base + "      orders: [orders]\n", 7, "versions.v1.resources.orders", "expected a mapping, got a list"},
		{"resource name", base + "      Orders: orders\n", 7, "versions.v1.resources.Orders", "resource name must be"},
		{"resource unknown key", base + "      orders:\n        service: orders\n        ttl: 1s\n", 9, "versions.v1.resources.orders", `unknown key "ttl"`},
		{"resource timeout", base + "      orders: {service: orders, timeout: fast}\n", 7, "versions.v1.resources.orders.timeout", `got "fast"`},
		{"resource cache ttl", base + "      orders: {service: orders, cache_ttl: [1s]}\n", 7, "versions.v1.resources.orders.cache_ttl", "expected a string, got a list"},
		{"crud unknown", base + "      orders:\n        service: orders\n        crud: [get, find]\n", 9, "versions.v1.resources.orders.crud[1]", `unknown CRUD operation "find"`},
		{"crud twice", base + "      orders:\n        service: orders\n        crud: [get, get]\n", 9, "versions.v1.resources.orders.crud[1]", "get is listed twice"},
		{"no singular", base + "      s: orders\n", 7, "versions.v1.resources.s", `no singular can be made from "s"`},
		{"crud action not snake", base + "      a--b: orders\n", 7, "versions.v1.resources.a--b", `CRUD action "GET_A__B" is not UPPER_SNAKE_CASE`},
		{"access unknown", base + "      orders: {service: orders, access: public}\n", 7, "versions.v1.resources.orders.access", `expected "anonymous", "authenticated" or {roles: [...]}, got "public"`},
		{"access no roles", base + "      orders:\n        service: orders\n        access: {roles: []}\n", 9, "versions.v1.resources.orders.access", "at least one role"},
		{"access unknown key", base + "      orders:\n        service: orders\n        access: {roles: [a], role: b}\n", 9, "versions.v1.resources.orders.access", `unknown key "role"`},
		{"access empty", base + "      orders:\n        service: orders\n        access: {}\n", 9, "versions.v1.resources.orders.access", "at least one role"},

		// actions.
		{"action without name", actions("          - method: GET\n"), 11, "versions.v1.resources.orders.actions[0]", "name is required"},
		{"action idempotency unknown", actions("          - {name: pay, idempotency: always}\n"), 11, "versions.v1.resources.orders.actions[0].idempotency", `expected "required", "optional" or "off", got "always"`},
		{"resource idempotency not a string", base + "      users: {service: users, idempotency: [required]}\n", 7, "versions.v1.resources.users.idempotency", "expected a string, got a list"},
		{"action name", actions("          - name: Pay\n"), 11, "versions.v1.resources.orders.actions[0].name", `action name must be lowercase letters, digits, "-" and "_", got "Pay"`},
		{"action openapi.json", actions("          - {name: openapi.json, on: collection}\n"), 11, "versions.v1.resources.orders.actions[0].name", `"openapi.json" is reserved`},
		{"action on", actions("          - {name: pay, on: items}\n"), 11, "versions.v1.resources.orders.actions[0].on", `expected "item" or "collection", got "items"`},
		{"action method", actions("          - name: pay\n            method: FETCH\n"), 12, "versions.v1.resources.orders.actions[0].method", `unknown method "FETCH"`},
		{"action method lower case", actions("          - {name: pay, methods: [POST, get]}\n"), 11, "versions.v1.resources.orders.actions[0].methods[1]", `unknown method "get"`},
		{"action method and methods", actions("          - {name: pay, method: GET, methods: [POST]}\n"), 11, "versions.v1.resources.orders.actions[0]", "set method or methods, not both"},
		{"action methods empty", actions("          - name: pay\n            methods: []\n"), 12, "versions.v1.resources.orders.actions[0].methods", "lists no methods"},
		{"action action", actions("          - {name: pay, action: pay_now}\n"), 11, "versions.v1.resources.orders.actions[0].action", `action "pay_now" is not UPPER_SNAKE_CASE`},
		{"action from name", actions("          - name: 2fa\n"), 11, "versions.v1.resources.orders.actions[0].name", `the action "2FA" made from the name is not UPPER_SNAKE_CASE; set action`},
		{"action service", actions("          - name: pay\n            service: payments\n"), 12, "versions.v1.resources.orders.actions[0].service", `unknown service "payments"`},
		{"action timeout", actions("          - {name: pay, timeout: 0s}\n"), 11, "versions.v1.resources.orders.actions[0].timeout", "must be positive"},
		{"action access", actions("          - {name: pay, access: {roles: admin}}\n"), 11, "versions.v1.resources.orders.actions[0].access.roles", "expected a list"},
		{"action null", actions("          - ~\n"), 11, "versions.v1.resources.orders.actions[0]", "expected a mapping, got null"},
		{"action unknown key", actions("          - name: pay\n            steps: []\n"), 12, "versions.v1.resources.orders.actions[0]", `unknown key "steps"`},
		{"action twice", actions("          - name: pay\n          - {name: pay, method: GET}\n          - name: pay\n"), 13, "versions.v1.resources.orders.actions[2]", "POST /orders/{id}/pay is defined twice (first at line 11)"},
		{"collection action twice", actions("          - {name: find, on: collection, methods: [GET, POST]}\n          - {name: find, on: collection, method: GET}\n"), 12, "versions.v1.resources.orders.actions[1]", "GET /orders/find is defined twice (first at line 11)"},
		{"action methods repeated", actions("          - {name: pay, methods: [POST, POST]}\n"), 11, "versions.v1.resources.orders.actions[0]", "POST /orders/{id}/pay is defined twice"},
		{"result without pipeline", actions("          - name: pay\n            result: charge\n"), 12, "versions.v1.resources.orders.actions[0].result", "result needs a pipeline"},

		// pipelines.
		{"pipeline empty", actions("          - name: pay\n            pipeline: []\n"), 12, "versions.v1.resources.orders.actions[0].pipeline", "expected a list of steps"},
		{"pipeline not a list", actions("          - name: pay\n            pipeline: PAY\n"), 12, "versions.v1.resources.orders.actions[0].pipeline", `expected a list of steps, got "PAY"`},
		{"result unknown", actions("          - name: pay\n            pipeline: [{action: PAY}]\n            result: charge\n"), 13, "versions.v1.resources.orders.actions[0].result", `no pipeline step named "charge"`},
		{"ends in parallel", pipeline("              - parallel: [{action: A}, {action: B}]\n"), 13, "versions.v1.resources.orders.actions[0].result", "ends with a parallel group"},
		{"step without action", pipeline("              - as: x\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0]", "action is required"},
		{"step action", pipeline("              - action: pay\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].action", `action "pay" is not UPPER_SNAKE_CASE`},
		{"step not a mapping", pipeline("              - PAY\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0]", `expected a step (a mapping), got "PAY"`},
		{"step unknown key", pipeline("              - action: PAY\n                args: {}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0]", `unknown key "args"`},
		{"step unknown service", pipeline("              - action: PAY\n                service: payments\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].service", `unknown service "payments"`},
		{"step names repeated", pipeline("              - action: CHECK\n              - {action: PAY, as: check}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[1]", `step name "check" is used twice (first at line 13)`},
		{"step names repeated in a group", pipeline("              - parallel: [{action: CHECK}, {action: CHECK}]\n              - action: PAY\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].parallel[1]", `step name "check" is used twice`},
		{"step name reserved", pipeline("              - {action: BODY}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0]", `step name "body" is reserved`},
		{"step name with a dot", pipeline("              - {action: PAY, as: a.b}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0]", `step name "a.b" must be`},
		{"parallel nested", pipeline("              - parallel:\n                  - parallel: [{action: A}]\n              - action: PAY\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].parallel[0]", "parallel groups do not nest"},
		{"parallel empty", pipeline("              - parallel: []\n              - action: PAY\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].parallel", "lists no steps"},
		{"parallel with other keys", pipeline("              - {parallel: [{action: A}], as: x}\n              - action: PAY\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0]", `unknown key "as"`},

		{"undo unknown key", pipeline("              - action: PAY\n                undo: {action: REFUND, ids: x}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].undo", `unknown key "ids"`},
		{"step in a group unknown key", pipeline("              - parallel:\n                  - {action: A, bdy: {}}\n              - action: PAY\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].parallel[0]", `unknown key "bdy"`},
		{"undo not a mapping", pipeline("              - {action: PAY, undo: REFUND}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].undo", `expected an action (a mapping), got "REFUND"`},
		{"undo without action", pipeline("              - {action: PAY, undo: {id: x}}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].undo", "action is required"},
		{"undo ref to a later step", pipeline("              - {action: PAY, undo: {action: REFUND, id: '${later.id}'}}\n              - action: LATER\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].undo.id", `no earlier step named "later"`},

		// references.
		{"ref to a later step", pipeline("              - {action: CHECK, id: '${pay.id}'}\n              - action: PAY\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].id", `reference ${pay.id}: no earlier step named "pay"`},
		{"ref to an unknown step", pipeline("              - action: PAY\n                body:\n                  total: ${basket.total}\n"), 15, "versions.v1.resources.orders.actions[0].pipeline[0].body.total", `no earlier step named "basket"`},
		{"ref to itself", pipeline("              - {action: PAY, body: {x: '${pay}'}}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].body.x", `step "pay" does not finish before this step starts`},
		{"ref within a group", pipeline("              - parallel:\n                  - action: A\n                  - {action: B, id: '${a.id}'}\n              - action: PAY\n"), 15, "versions.v1.resources.orders.actions[0].pipeline[0].parallel[1].id", `step "a" does not finish before this step starts`},
		{"ref in a list in the body", pipeline("              - action: PAY\n                body:\n                  - ok\n                  - [x, 'a ${caller.name} b']\n"), 16, "versions.v1.resources.orders.actions[0].pipeline[0].body[1][1]", "the caller offers ${caller.subject} and ${caller.roles}"},
		{"ref malformed", pipeline("              - {action: PAY, id: '${}'}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].id", "malformed reference ${}"},
		{"ref empty part", pipeline("              - {action: PAY, id: '${body..a}'}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].id", "malformed reference ${body..a}"},
		{"ref unterminated", pipeline("              - {action: PAY, id: 'x-${path.id'}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].id", `unterminated reference in "x-${path.id"`},
		{"ref path", pipeline("              - {action: PAY, id: '${path.name}'}\n"), 13, "versions.v1.resources.orders.actions[0].pipeline[0].id", "the path offers only ${path.id}"},
		{"ref path id on a collection", actions("          - name: pay\n            on: collection\n            pipeline:\n              - {action: PAY, id: '${path.id}'}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].id", "a collection route has no id"},

		// bodies.
		{"body integer too big", pipeline("              - action: PAY\n                body: {n: 18446744073709551615}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].body.n", "does not fit in 64 bits"},
		{"body infinity", pipeline("              - action: PAY\n                body: [.inf]\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].body[0]", "has no JSON form"},
		{"body key repeated", pipeline("              - action: PAY\n                body: {a: 1, a: 2}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].body", `key "a" is repeated`},
		{"body complex key", pipeline("              - action: PAY\n                body: {[a]: 1}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].body", "keys must be plain names"},
		{"body custom tag", pipeline("              - action: PAY\n                body: {a: !thing x}\n"), 14, "versions.v1.resources.orders.actions[0].pipeline[0].body.a", "unsupported YAML tag !thing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("testdata/gateway.yaml", []byte(tt.yaml), env)
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Error("config returned with an error")
			}
			prefix := fmt.Sprintf("testdata/gateway.yaml:%d: ", tt.line)
			if tt.path != "" {
				prefix += tt.path + ": "
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.Contains(lines[0], tt.want) {
				t.Errorf("error:\n%v\nwant one line: %s…%s…", err, prefix, tt.want)
			}
		})
	}
}

func TestParseErrorsAll(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("gateway.yaml", []byte(`versions:
  v1:
    resources:
      orders: order
  v2:
    extends: v3
  v3:
    extends: v2
services:
  users: {target: "users:9000", timeout: abc}
http: {max_json_depth: -1}
`), env)
	want := []string{
		`gateway.yaml:4: versions.v1.resources.orders: unknown service "order"`,
		`gateway.yaml:6: versions.v2.extends: extends cycle: v2 → v3 → v2`,
		`gateway.yaml:8: versions.v3.extends: extends cycle: v3 → v2 → v3`,
		`gateway.yaml:10: services.users.timeout: expected a duration such as "5s" or "1m30s", got "abc"`,
		`gateway.yaml:11: http.max_json_depth: must be between 1 and 65536, got -1`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}

func TestParseErrorsNoEnv(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("gateway.yaml", []byte("auth:\n  api_keys: [{name: a, secret_env: MOBILE_KEY}]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "gateway.yaml:2: auth.api_keys[0].secret_env: environment variable MOBILE_KEY is unset") {
		t.Errorf("error = %v", err)
	}
}

// TestParseErrorsMisspelled: a misspelled key anywhere is reported with
// its file, line and path, and one load reports every one of them.
func TestParseErrorsMisspelled(t *testing.T) {
	t.Parallel()
	_, err := config.Parse("gateway.yaml", []byte(`htp: {}
http:
  max_body: 1
  cors: {max_ages: 1s}
  idempotency: {tll: 1h}
auth:
  jwts: []
services:
  users: {target: "users:9000", timout: 1s}
versions:
  v1:
    extend: v0
    resources:
      users:
        service: users
        acess: anonymous
        actions:
          - name: pay
            metod: GET
            pipeline:
              - action: PAY
                bdy: {}
                undo: {action: REFUND, boddy: {}}
`), env)
	want := []string{
		`gateway.yaml:1: unknown key "htp"`,
		`gateway.yaml:3: http: unknown key "max_body"`,
		`gateway.yaml:4: http.cors: unknown key "max_ages"`,
		`gateway.yaml:5: http.idempotency: unknown key "tll"`,
		`gateway.yaml:7: auth: unknown key "jwts"`,
		`gateway.yaml:9: services.users: unknown key "timout"`,
		`gateway.yaml:12: versions.v1: unknown key "extend"`,
		`gateway.yaml:16: versions.v1.resources.users: unknown key "acess"`,
		`gateway.yaml:19: versions.v1.resources.users.actions[0]: unknown key "metod"`,
		`gateway.yaml:22: versions.v1.resources.users.actions[0].pipeline[0]: unknown key "bdy"`,
		`gateway.yaml:23: versions.v1.resources.users.actions[0].pipeline[0].undo: unknown key "boddy"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
}
