package main

import (
	"fmt"
	"strings"

	"github.com/streamgate/streamgate/services/run"
)

// commands are streamgate's commands, in the order the usage lists them.
func commands() []*command {
	return []*command{
		{name: "stack", usage: stackUsage, notes: []string{tracingNote, firstRunNote}, maxArgs: 0, flags: stackCmd},
		{name: "token", usage: tokenUsage, minArgs: 1, maxArgs: 1, want: "SUBJECT, e.g. alice", flags: tokenCmd},
		{name: "gateway", usage: gatewayUsage, notes: []string{tracingNote}, maxArgs: 0, flags: gatewayCmd},
		{name: "service", usage: fmt.Sprintf(serviceUsage, strings.Join(run.Names(), ", ")), notes: []string{tracingNote},
			lead: "NAME", maxArgs: 0, flags: serviceCmd},
		{name: "call", usage: callUsage, maxArgs: 4, flags: callCmd},
		{name: "reconcile", usage: reconcileUsage, maxArgs: 0, flags: reconcileCmd},
		{name: "conformance", usage: conformanceUsage, maxArgs: 0, flags: conformanceCmd},
		{name: "load", usage: loadUsage, minArgs: 1, maxArgs: 1, want: "one URL, e.g. http://127.0.0.1:8080/v1/users/{id}", flags: loadCmd},
		{name: "bench", subs: []*command{
			{name: "bench compare", usage: benchCompareUsage, maxArgs: 0, flags: benchCompareCmd},
			{name: "bench fanout", usage: benchFanoutUsage, maxArgs: 0, flags: benchFanoutCmd},
			{name: "bench subscribers", usage: benchSubscribersUsage, maxArgs: 0, hidden: true, flags: benchSubscribersCmd},
			{name: "bench serve", usage: benchServeUsage, lead: "KIND", maxArgs: 0, hidden: true, flags: benchServeCmd},
			{name: "bench load", usage: benchLoadUsage, maxArgs: 0, hidden: true, flags: benchLoadCmd},
		}},
	}
}

const stackUsage = `  streamgate stack [-http ADDR] [-grpc ADDR] [-admin ADDR] [-data DIR] [-store sqlite|memory|postgres] [-dsn URL] [-cache=false] [-config FILE] [-service-ports=false]
                   [-services users=python,inventory=node] [-nats embedded|URL] [-gateways N] [-redis URL]
                   [-pprof] [-log-format text|json] [-log-level debug|info|warn|error]
      Start the users, inventory, orders and payments services (on 127.0.0.1:9101–9104,
      or free ports with -service-ports=false), sandbox payment providers A, B, C and
      the gateway in one process, print the addresses and credentials (the JWT secret
      too, for streamgate token), then "ready".
      Env: STREAMGATE_ADMIN_KEY, STREAMGATE_JWT_SECRET, STREAMGATE_SERVICE_KEY
      (random when unset), STREAMGATE_DSN (for -dsn). Ctrl-C drains and exits 0.
      -config defaults to gateway/stack.yaml when present, else the copy built in.
      -services runs services in another language as child processes of the stack
      (users=python: services/python/shop/users.py with /usr/bin/python3;
      inventory=node: services/node/shop/inventory.js with node; the others in go),
      from the working directory's checkout, with -store memory or postgres (not
      sqlite); their logs join the stack's (service=NAME); one that exits stops the stack.
      -nats serves every Go service over NATS too and has the gateways call them there:
      embedded (a NATS server with JetStream in the process, on a free loopback port)
      or a nats:// or tls:// URL (with JetStream); not with -services. -gateways N runs
      N gateways, gateway k on each port plus 100·k; more than one needs -redis URL,
      where they share cache generations and Idempotency-Key state.
      TLS of the gateway's listeners: [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE]
      [-insecure-plaintext] (as for gateway below).
`

const tokenUsage = `  streamgate token [-roles a,b] [-ttl D] SUBJECT
      Print an HS256 user JWT (issuer streamgate) signed with STREAMGATE_JWT_SECRET.
`

const gatewayUsage = `  streamgate gateway -config FILE [-http ADDR] [-grpc ADDR] [-admin ADDR] [-shutdown-timeout D]
                     [-pprof] [-log-format text|json] [-log-level debug|info|warn|error]
                          [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE]
                          [-service-tls-ca FILE] [-service-tls-cert FILE -service-tls-key FILE]
                          [-service-tls-server-name NAME] [-insecure-plaintext]
      Serve the REST edge and GatewayService (gRPC, with health and reflection);
      -admin serves /healthz, /readyz (503 while draining), the Prometheus
      metrics at /metrics and, with -pprof, /debug/pprof/. One access-log line
      per request at -log-level info.
      SIGHUP re-reads the config; SIGTERM/Ctrl-C drains and exits.
      -tls-cert/-tls-key serve REST and gRPC over TLS (-tls-client-ca: require client
      certificates); -service-tls-* reach the services the config gives no TLS over
      TLS (mutual with -service-tls-cert). Plaintext on an address other than loopback
      is refused unless -insecure-plaintext (or plaintext: true in the config).
`

// serviceUsage has a %s: the services' names.
const serviceUsage = `  streamgate service NAME [-listen ADDR] [-nats URL [-nats-events=false]] [-admin ADDR] [-pprof] [-store sqlite|memory|postgres] [-data DIR] [-dsn URL]
                          [-inventory ADDR] [-gateways A=URL,B=URL,C=URL] [-provider-timeout D] [-version V]
                          [-settle-interval D] [-settle-older-than D]
                          [-log-format text|json] [-log-level debug|info|warn|error]
                          [-tls-cert FILE -tls-key FILE] [-tls-client-ca FILE] [-service-tls-ca FILE]
                          [-service-tls-cert FILE -service-tls-key FILE] [-service-tls-server-name NAME]
                          [-insecure-plaintext] [-key KEY]
      Serve one service; -admin serves /healthz, /readyz, /metrics (and
      /debug/pprof/ with -pprof). Callers (and the services it calls) use the key in
      -key or STREAMGATE_SERVICE_KEY (a random one is printed when unset; for the
      conformance fixture of docs/protocol.md: STREAMGATE_CONFORMANCE_KEY); STREAMGATE_DSN
      is the PostgreSQL URL when -dsn is not given. -tls-* serve the socket over
      TLS (-tls-client-ca: mutual TLS); -service-tls-* reach the services it calls
      (orders: inventory) over TLS. Plaintext off loopback needs -insecure-plaintext.
      -nats URL serves over NATS request-reply as well (-listen '': NATS alone), and
      stores every event in JetStream for the gateway's event history (unless
      -nats-events=false).
      Services: %s
`

const callUsage = `  streamgate call [-addr ADDR | -gateway ADDR|URL] [-key KEY] [-version V] [-principal SUB] [-idempotency-key K] [-timeout D] SERVICE ACTION [ID] [JSON]
      Send one request and print the response envelope: straight to a service's
      socket (-addr, key from STREAMGATE_SERVICE_KEY), or through the gateway
      (-gateway, with -version; key: an API key or JWT, default STREAMGATE_ADMIN_KEY),
      which finds the version's route for SERVICE ACTION. Exit status 1 when ok is false.
  streamgate call [-addr ADDR] [-key KEY] [-timeout D] -watch TOPIC
      Subscribe to TOPIC (orders/ord_1, or a pattern: items/*, *) on every instance
      of the service at -addr and print one JSON line per event,
      {"type":"event","topic","seq","data","visibility"} ("gap": true when events
      before it may be missing; {"type":"gap"} when a stream broke), until
      interrupted (or -timeout, when given).
  streamgate call -gateway URL -version V [-key KEY] -watch TOPIC
      Print TOPIC's events (e.g. orders/ord_1), one JSON line each, until interrupted,
      over the WebSocket endpoint of the gateway whose REST URL is URL.
      -gateway names the gateway the same way everywhere: a URL (http://HOST:PORT,
      https, ws, wss) is its REST edge (requests: POST /gateway/v1/invoke; -watch:
      its WebSocket endpoint); HOST:PORT (or a gRPC target, dns:///HOST:PORT) is its
      gRPC API (requests only: -watch needs the URL). The stack's are
      http://127.0.0.1:8080 and 127.0.0.1:9090.
`

const reconcileUsage = `  streamgate reconcile [-orders ADDR] [-payments ADDR] [-inventory ADDR] [-key KEY] [-dry-run] [-json] [-older-than D] [-timeout D]
      Settle what orders (default 127.0.0.1:9103), payments (127.0.0.1:9104) and
      inventory (127.0.0.1:9102; -inventory "" leaves stock alone) disagree about
      after faults: payments whose gateway never answered, charges without a paid
      order (marked paid or refunded), purchases stuck paying past their lease
      (released), stock reserved by purchases no order is paying or was paid by
      (released_stock). Acts as an admin with the key (default
      STREAMGATE_SERVICE_KEY; it must be able to name a principal). Prints one line
      per settlement and a summary ("nothing to settle"); exit status 1 on error.
`

const conformanceUsage = `  streamgate conformance [-addr HOST:PORT] [-key KEY] [-json] [-run REGEXP] [-timeout D]
      Run the socket protocol's conformance kit (docs/protocol.md, streamgate socket
      protocol 1.0) against a fixture service (§12: streamgate service conformance, or
      the Node or Python fixture) at -addr, with its key (default
      STREAMGATE_CONFORMANCE_KEY). One line per case, "PASS|FAIL  §N  name  (why)",
      then a summary; -json prints the report as JSON. Each case is bounded by
      -timeout (default 10s); the last case, drain, ends the service. Exit status 1
      when a case fails.
`

const loadUsage = `  streamgate load [-method M] [-ids FROM-TO] [-H 'Name: value']... [-body S | -body-file FILE]
                  [-c N] [-duration D] [-rate R/s] [-requests N] [-timeout D] [-json FILE] [-svg FILE] URL
      Drive a route on loopback (each {id} in URL and body is the next id of -ids)
      with -c connections (default 64) for -duration (default 10s): closed loop,
      or at a fixed -rate (latency counted from when each request was due). Prints
      req/s, p50/p90/p99/p99.9/max and errors by status and transport error, with
      a live progress line on a terminal; -json writes the histogram, -svg a chart.
      Exit status 1 when no request succeeded (every answer an error or none).
`

const benchCompareUsage = `  streamgate bench compare [-systems LIST] [-rounds N] [-c N] [-duration D] [-warmup D] [-users N]
                           [-load-cpus LIST] [-server-cpus LIST] [-wrk PATH|auto|off] [-log-level LEVEL]
                           [-markdown FILE] [-svg FILE]
      Start each system in turn as its own processes on loopback (direct handler,
      grpc-gateway → unary gRPC, httputil.ReverseProxy → HTTP/JSON, streamgate with
      cache and coalescing off, the same over NATS, streamgate with cache on), check
      every answer, load each alike for -rounds rounds (default 2) and print CPU per
      request of each system's processes (the headline), req/s, p50, p99 and the
      ratios to the first system. The load runs in a process of its own on
      -load-cpus, the servers on -server-cpus (taskset -c; default: the first half
      of the CPUs for the load, the rest for the servers; "all": not pinned), or is
      wrk (-wrk PATH, or auto: wrk when on PATH; off: never). The streamgate
      gateways log at -log-level (default info: a line per request) as the gateway
      command does.
      -systems node-socket,node-http: one Node handler (services/node) behind the
      streamgate gateway's socket and behind httputil.ReverseProxy (needs node; run
      from the repository's root).
`

const benchFanoutUsage = `  streamgate bench fanout [-subscribers N] [-rate R[,R2,…]] [-duration D] [-topics K] [-conflate=false]
                          [-dials N] [-load-cpus LIST] [-server-cpus LIST] [-log-level LEVEL] [-markdown FILE]
                          [-server-cpuprofile FILE]
      Start the streamgate gateway and a service publishing states at a fixed rate
      (R a second on each of K topics, for D; each state carries its number n and
      the time it was due) in one process on -server-cpus, then, for each rate, N
      WebSocket subscribers in a process of their own on -load-cpus (default 1000;
      subscriber i watches topic i mod K). Prints a row per rate: deliveries and
      deliveries/s, latency p50/p90/p99/max from when each state was due, states
      lost (below a later one, neither delivered, conflated away nor covered by a
      gap marker), states not there when the wait ended, duplicates, out-of-order, skipped (conflated), subscribers ending on the last
      state, subscribers cut off (4408), and the server's CPU time per 100k
      deliveries. -conflate=false watches a resource declared conflate: false (a
      gateway without that key conflates nothing, and says so). Loopback only.
      -server-cpuprofile writes the server's CPU profile from the first publish on.
`

const benchSubscribersUsage = `  streamgate bench subscribers -url URL -subscribers N -states N [-resource R] [-prefix P] [-topics K]
                               [-dials N] [-subscribe-timeout D] [-wait D]
      The subscribers process bench fanout starts (it runs this binary again); not
      for direct use. Prints "subscribed", then "saw" and what they saw as JSON.
`

const benchLoadUsage = `  streamgate bench load -url URL [-users N] [-c N] [-warmup D] [-duration D]
      The load process bench compare starts (it runs this binary again); not for
      direct use. Prints "measuring", then "measured" and what it measured as JSON.
`

const benchServeUsage = `  streamgate bench serve KIND [-listen ADDR] [-backend ADDR] [-config FILE] [-users N]
      One of the servers bench compare starts (it runs this binary again); not
      for direct use. Prints "ready ADDR" once it listens.
`

// tracingNote is printed after the whole usage and after the help of the
// serving commands.
const tracingNote = `  Tracing (stack, gateway, service): spans go over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT
      (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; OTEL_EXPORTER_OTLP_PROTOCOL grpc or
      http/protobuf; the other standard OTEL_* env vars apply); off when unset.
`

// firstRunNote says why the first `go run ./tools/streamgate` is slow.
const firstRunNote = `  First run: go run ./tools/streamgate compiles the module first, about 3 minutes
      on a fresh machine, silently; go run -v ./tools/streamgate stack (or make stack)
      lists the packages as they compile, and go install ./tools/streamgate builds
      the streamgate binary once. Later runs start in seconds.
`

// helpUsage is the help command's own line in the whole usage.
const helpUsage = `  streamgate help [COMMAND [SUBCOMMAND]]
      Print this usage, or one command's with its flags (also -h, --help, or
      COMMAND -h). Exit status: 0; 1 when a command fails while running; 2 when
      the command line makes no sense (one line on stderr: "streamgate: COMMAND: …").
`
