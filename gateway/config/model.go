// Package config loads and validates the gateway's YAML configuration: the
// services it reaches, and per API version the resources, routes,
// pipelines and access rules. Errors name the file, the line and the
// problem. The file's keys are the yaml tags of yaml.go, each in one
// place; the types below document them.
//
//	cfg, err := config.Load("gateway.yaml")
//	// gateway.yaml:14: versions.v1.resources.orders: unknown service "order"
//	route, allow, err := cfg.Versions["v1"].Resources["users"].Lookup(config.FormItem, "", "GET")
package config

import (
	"crypto"
	"crypto/tls"
	"time"
)

// Config is a loaded, validated gateway configuration with every default
// filled in.
type Config struct {
	// Path is the file the configuration was loaded from.
	Path string
	// HTTP is how the REST edge behaves.
	HTTP HTTP
	// Auth is how callers authenticate at the edge.
	Auth Auth
	// Services are the services the gateway reaches, by name.
	Services map[string]*Service
	// Versions are the API versions, by name (the first path segment).
	Versions map[string]*Version
	// Redis is a redis:// URL for state shared between gateways; empty
	// means in-process only. YAML redis (the URL) or redis_env (an env var
	// holding it, when it carries a password).
	Redis string
	// RedisTimeout bounds each Redis call on a request's path (the
	// cache's generations, the Idempotency-Key store): past it a read is
	// answered by its service (X-Cache: unavailable), a write is answered
	// without waiting for its invalidation (retried in the background),
	// and a request with an Idempotency-Key is refused (503,
	// Retry-After). YAML redis_timeout, default 250ms, at most 5s.
	RedisTimeout time.Duration
	// RedisGenerationTTL is how long a cache tag's generation key lives
	// in Redis after its last bump; cached answers live at most half of
	// it. (Idempotency-Key records expire with their lease and
	// http.idempotency.ttl.) YAML redis_generation_ttl, default 24h, at
	// least 10m.
	RedisGenerationTTL time.Duration
	// ListenTLS is the TLS of the gateway's REST and gRPC listeners; zero
	// means plaintext. YAML listen_tls.
	ListenTLS ListenTLS
	// Plaintext allows plaintext listeners and service links on addresses
	// other than loopback (which are refused otherwise). YAML plaintext,
	// default false.
	Plaintext bool
	// Events, when set, has the gateway read services' events from
	// JetStream instead of subscribing to each service. YAML events; nil
	// when the document has none.
	Events *Events `json:",omitempty"`
}

// Events is where the gateway reads the events services store in
// JetStream (services on NATS with their events on: natsserve.WithEvents),
// and how much history it keeps. YAML events: nats_url (required; a
// plaintext nats:// URL off loopback is refused as a service's is), root
// (the subjects' first tokens, default streamgate.events, as the
// services'), windows (a list of prefix, max_age, max_bytes; default one
// window per resource name of every version — a topic is
// "{resource}/{id}" — each with max_age 1h and max_bytes 64 MiB). The
// gateway creates the windows' streams: a service's events are stored
// only in a stream some gateway made.
type Events struct {
	NATSURL string
	Root    string
	// Replicas is how many copies JetStream keeps of each window's stream
	// (YAML replicas, 1 to 5, default 1): 3 on a cluster of three servers
	// keeps the history through the loss of one.
	Replicas int
	Windows  []EventWindow
}

// EventWindow is the history kept for the topics under Prefix (whole
// segments: "orders" covers "orders/o1"): events older than MaxAge, or
// past MaxBytes in all, are dropped oldest first. YAML
// events.windows[i]: prefix (required), max_age (default 1h), max_bytes
// (default 64 MiB).
type EventWindow struct {
	Prefix   string
	MaxAge   time.Duration
	MaxBytes int64
}

// The defaults of an events window (EventWindow).
const (
	DefaultEventsMaxAge   = time.Hour
	DefaultEventsMaxBytes = 64 << 20
)

// ListenTLS is a listener's TLS. YAML listen_tls: cert_file and key_file
// (PEM; both or neither), client_ca_file (PEM CAs: clients must present a
// certificate they signed). Relative paths are relative to the
// configuration file; the files are checked when the configuration loads.
type ListenTLS struct {
	CertFile, KeyFile, ClientCAFile string
}

// LinkTLS is the TLS of the gateway's link to a service. YAML
// service_tls (every service's) and services.NAME.tls (this service's,
// field by field over service_tls): ca_file (PEM CAs that verify the
// service; default the system's roots), cert_file and key_file (the
// gateway's client certificate, for mutual TLS), server_name (the name
// the service's certificate must carry; default the target's host, also
// for every address a dns:/// target resolves to). Relative paths are
// relative to the configuration file.
type LinkTLS struct {
	CAFile, CertFile, KeyFile, ServerName string
	// Config is built from the files when the configuration loads.
	Config *tls.Config
}

// HTTP is the REST edge's behaviour.
type HTTP struct {
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	// YAML http.max_body_bytes, default 1 MiB.
	MaxBodyBytes int64
	// MaxJSONDepth bounds nesting in a request body. YAML
	// http.max_json_depth, default 64.
	MaxJSONDepth int
	// DefaultTimeout applies to routes whose service and route set none.
	// YAML http.default_timeout, default 10s.
	DefaultTimeout time.Duration
	// CORS, when AllowedOrigins is not empty, answers preflights and adds
	// CORS headers.
	CORS CORS
	// Idempotency is how long and how much of the Idempotency-Key answers
	// the gateway keeps.
	Idempotency IdempotencyStore
	// PaymentRequiredReasons are the reasons (details "reason") of a
	// FAILED_PRECONDITION that answer 402 Payment Required instead of 422:
	// a payment the provider refused. Services declare their reasons (the
	// example payments service: payments.PaymentRefusals); the gateway
	// learns them here, wherever the services run. YAML
	// http.payment_required_reasons, default card_declined,
	// insufficient_funds, expired_card, invalid_card; [] for none.
	PaymentRequiredReasons []string
}

// IdempotencyStore bounds the answers kept for Idempotency-Key replays.
// YAML http.idempotency: ttl (how long a definite answer is replayed,
// default 24h), max_entries (default 100000) and max_bytes (default 64
// MiB) bound the in-process store; with redis set, answers live in Redis
// for ttl and the bounds do not apply.
type IdempotencyStore struct {
	TTL        time.Duration
	MaxEntries int64
	MaxBytes   int64
}

// Idempotency is how a route treats the Idempotency-Key header. YAML
// idempotency, on an action (every method it takes) or on a resource (its
// write routes: the CRUD create, update and delete, and actions that set
// none): "required", "optional" or "off". Default: optional for writes
// (POST, PUT, PATCH, DELETE), off for GET.
type Idempotency string

// The idempotency modes.
const (
	// IdempotencyOff forwards a key as it is, without checking or storing.
	IdempotencyOff Idempotency = "off"
	// IdempotencyOptional applies the key when the client sends one.
	IdempotencyOptional Idempotency = "optional"
	// IdempotencyRequired refuses requests without a key (400, reason
	// idempotency_key_required).
	IdempotencyRequired Idempotency = "required"
)

// CORS is the cross-origin policy. YAML http.cors.
type CORS struct {
	AllowedOrigins   []string // "*" allows any origin
	AllowedHeaders   []string // default: Authorization, Content-Type, Idempotency-Key, X-Request-Id, X-API-Key
	ExposedHeaders   []string // default: X-Request-Id, Location, ETag, X-Cache, Retry-After, Idempotent-Replayed
	AllowCredentials bool
	MaxAge           time.Duration // default 10m
}

// Auth is how callers authenticate at the edge.
type Auth struct {
	// APIKeys are accepted as "Authorization: Bearer KEY" or "X-API-Key: KEY".
	APIKeys []APIKey
	// JWT are the token issuers accepted as "Authorization: Bearer JWT".
	JWT []JWTIssuer
}

// APIKey is one accepted API key. YAML auth.api_keys[]: name, hash
// ("sha256:HEX") or secret_env (an env var holding the secret), subject
// (default: the name), roles.
type APIKey struct {
	Name    string
	Hash    string // always "sha256:HEX" after loading
	Subject string
	Roles   []string
	Line    int
}

// JWTIssuer is one accepted token issuer. YAML auth.jwt[]: issuer,
// audience (string or list), hs256_secret_env, public_key_files (PEM: RSA
// keys verify RS256, P-256 keys ES256), roles_claim (default "roles"),
// leeway (default 30s). At least one of hs256_secret_env and
// public_key_files is required.
type JWTIssuer struct {
	Issuer      string
	Audience    []string
	HS256Secret []byte
	PublicKeys  []crypto.PublicKey // *rsa.PublicKey or *ecdsa.PublicKey (P-256)
	RolesClaim  string
	Leeway      time.Duration
	Line        int
}

// Service is one service the gateway reaches. YAML services.NAME: target
// (a caller.Dial target string, or a list of addresses), key_env (an env
// var holding the key the gateway presents) or key, timeout, tls (see
// LinkTLS), plaintext, transport (stream or nats) and nats_url.
//
// The link is TLS when service_tls or the service's tls is set, unless
// the service sets plaintext: true; a plaintext link to a target other
// than loopback is refused unless plaintext is set, here or at the top.
type Service struct {
	Name    string
	Target  string // a list of addresses becomes "static:///a,b"
	Key     string
	Timeout time.Duration // 0: use HTTP.DefaultTimeout
	// TLS is the link's TLS; nil: plaintext.
	TLS *LinkTLS
	// Plaintext allows a plaintext link to a target other than loopback.
	Plaintext bool
	// Transport is how requests reach the service: TransportStream (the
	// gRPC stream to each instance, the default) or TransportNATS.
	Transport string `json:",omitempty"`
	// NATSURL is the NATS server of a service on TransportNATS; Target is
	// then the service's micro service name (the service's name unless
	// target says otherwise).
	NATSURL string `json:",omitempty"`
	Line    int
}

// The transports a service may be reached by (YAML services.NAME.transport).
const (
	// TransportStream is the gRPC stream to each instance.
	TransportStream = "stream"
	// TransportNATS is NATS request-reply to the service's micro service
	// (see services/socket/natsserve), on the server at nats_url.
	TransportNATS = "nats"
)

// Version is one API version's route table. YAML versions.NAME:
// extends (another version whose resources it starts from), resources.
type Version struct {
	Name      string
	Resources map[string]*Resource
	Line      int
}

// Form is the shape of a REST path under a resource.
type Form int

// The route forms (docs/gateway.md, "Routes").
const (
	// FormCollection is /{version}/{resource}: LIST (GET) and CREATE (POST).
	FormCollection Form = iota
	// FormItem is /{version}/{resource}/{id}: GET, UPDATE (PUT, PATCH), DELETE.
	FormItem
	// FormItemAction is /{version}/{resource}/{id}/{action}.
	FormItemAction
	// FormCollectionAction is /{version}/{resource}/{action}.
	FormCollectionAction
)

// Resource is one REST resource of a version. YAML
// versions.V.resources.NAME is either a service name (the whole CRUD
// convention on that service) or a mapping: service, singular (default:
// the name without its plural ending), crud (subset of get, list, create,
// update, delete; default all), access, cache_ttl, cache, coalesce,
// visibility, timeout, idempotency, actions, conflate.
type Resource struct {
	Name     string // the path segment, e.g. "users"
	Service  string
	Singular string // e.g. "user"; CRUD actions are GET_USER, LIST_USERS, …
	Routes   []*Route
	Line     int
	// NoConflate is YAML conflate: false: every event of the resource's
	// topics reaches a WebSocket subscriber (one that lets them pile up
	// is cut off). By default a topic's events each carry the whole
	// object, so a newer one may replace an older one still queued for a
	// slow subscriber (the event frame then says how many it skipped).
	NoConflate bool `json:",omitempty"`
}

// Route is what one method on one path form of a resource runs.
type Route struct {
	Form    Form
	Segment string // the action's path segment for the action forms
	Method  string // GET, POST, PUT, PATCH or DELETE
	// Service and Action are the single action the route sends, when it
	// has no pipeline.
	Service string
	Action  string
	// Pipeline, when not empty, runs instead of the single action.
	Pipeline []*Step
	// Result names the pipeline step whose result is the answer; default
	// the last step's.
	Result string
	Access Access
	// Create routes answer 201 with a Location header.
	Create bool
	// List routes turn query parameters into body fields.
	List bool
	// CacheTTL is how long a read's answer is cached; 0 means the
	// action's own TTL (from Describe).
	CacheTTL time.Duration
	// Caching turns caching and coalescing off and sets who may share
	// answers.
	Caching Caching
	// Timeout is the route's deadline and the most a client may ask for.
	Timeout time.Duration
	// Idempotency is how the route treats Idempotency-Key; never empty
	// after loading.
	Idempotency Idempotency
	Line        int
}

// Caching is a route's cache and coalescing settings. YAML, on a resource
// or an action: cache (bool, default true), coalesce (bool, default true),
// visibility ("public" or "per-caller"; default: what the action declares
// in Describe, per-caller unless it is Public).
type Caching struct {
	NoCache    bool
	NoCoalesce bool
	Visibility string // "", VisibilityPublic or VisibilityPerCaller
}

// The visibilities of a read's answers.
const (
	VisibilityPublic    = "public"     // the same for every caller
	VisibilityPerCaller = "per-caller" // never shared between principals
)

// Access says who may call a route. YAML access: "anonymous",
// "authenticated" (the default), or {roles: [admin, …]}.
type Access struct {
	// Anonymous routes need no credentials (they are still checked when
	// given).
	Anonymous bool
	// Roles, when not empty: the caller needs one of them.
	Roles []string
}

// Step is one step of a pipeline: one action, or a group run in parallel.
// YAML: {as, service, action, id, body} or {parallel: [steps]}. The
// service defaults to the resource's. The id and the strings of the body
// are templates (see Template for their "${…}" references).
type Step struct {
	Name     string // "as"; default the action's name in lower case
	Service  string
	Action   string
	ID       *Template // nil: no id
	Body     *Template // nil: no body
	Parallel []*Step
	// Undo, when set, compensates the step: if a later step fails, the
	// undos of the steps that succeeded run in reverse order (best effort)
	// before the failure is answered, as the gateway's own identity (its
	// service key), not the caller's. YAML undo: {service, action, id,
	// body}, which may refer to the step's own result.
	Undo *Step
	Line int
}

// Lookup finds the route for a method on a path form; segment is the
// action's segment for the action forms. When the path exists but not
// for that method, route is nil and allow lists the methods it takes;
// when the path does not exist, both are nil.
func (r *Resource) Lookup(form Form, segment, method string) (route *Route, allow []string) {
	for _, rt := range r.Routes {
		if rt.Form != form || rt.Segment != segment {
			continue
		}
		if rt.Method == method {
			return rt, nil
		}
		allow = append(allow, rt.Method)
	}
	return nil, allow
}

// HasCollectionAction reports whether segment is one of the resource's
// collection actions, which decides /{resource}/{segment} between an item
// and a collection action.
func (r *Resource) HasCollectionAction(segment string) bool {
	for _, rt := range r.Routes {
		if rt.Form == FormCollectionAction && rt.Segment == segment {
			return true
		}
	}
	return false
}
