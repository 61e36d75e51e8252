package config

import (
	"net"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The document as written: each key of the configuration file is the yaml
// tag of one field below, and nowhere else. model.go documents them.

type yamlConfig struct {
	HTTP     yamlHTTP             `yaml:"http"`
	Auth     yamlAuth             `yaml:"auth"`
	Services entries[yamlService] `yaml:"services"`
	Redis    val[string]          `yaml:"redis"`
	RedisEnv val[string]          `yaml:"redis_env"`
	Versions entries[yamlVersion] `yaml:"versions"`

	ListenTLS  yamlListenTLS `yaml:"listen_tls"`
	ServiceTLS yamlLinkTLS   `yaml:"service_tls"`
	Plaintext  val[bool]     `yaml:"plaintext"`

	RedisTimeout       val[positive] `yaml:"redis_timeout"`
	RedisGenerationTTL val[positive] `yaml:"redis_generation_ttl"`
}

type yamlListenTLS struct {
	At           at
	CertFile     val[string] `yaml:"cert_file"`
	KeyFile      val[string] `yaml:"key_file"`
	ClientCAFile val[string] `yaml:"client_ca_file"`
}

type yamlLinkTLS struct {
	At         at
	CAFile     val[string] `yaml:"ca_file"`
	CertFile   val[string] `yaml:"cert_file"`
	KeyFile    val[string] `yaml:"key_file"`
	ServerName val[string] `yaml:"server_name"`
}

type yamlHTTP struct {
	MaxBodyBytes   val[int64]    `yaml:"max_body_bytes"`
	MaxJSONDepth   val[int64]    `yaml:"max_json_depth"`
	DefaultTimeout val[positive] `yaml:"default_timeout"`
	CORS           struct {
		AllowedOrigins   val[[]string]      `yaml:"allowed_origins"`
		AllowedHeaders   val[[]string]      `yaml:"allowed_headers"`
		ExposedHeaders   val[[]string]      `yaml:"exposed_headers"`
		AllowCredentials val[bool]          `yaml:"allow_credentials"`
		MaxAge           val[time.Duration] `yaml:"max_age"`
	} `yaml:"cors"`
	Idempotency struct {
		TTL        val[positive] `yaml:"ttl"`
		MaxEntries val[int64]    `yaml:"max_entries"`
		MaxBytes   val[int64]    `yaml:"max_bytes"`
	} `yaml:"idempotency"`
	PaymentRequiredReasons val[[]string] `yaml:"payment_required_reasons"`
}

type yamlAuth struct {
	APIKeys []yamlAPIKey `yaml:"api_keys"`
	JWT     []yamlJWT    `yaml:"jwt"`
}

type yamlAPIKey struct {
	At        at
	Name      val[string]   `yaml:"name"`
	Hash      val[text]     `yaml:"hash"`
	SecretEnv val[string]   `yaml:"secret_env"`
	Subject   val[string]   `yaml:"subject"`
	Roles     val[[]string] `yaml:"roles"`
}

type yamlJWT struct {
	At             at
	Issuer         val[string]        `yaml:"issuer"`
	Audience       val[nameList]      `yaml:"audience"`
	HS256SecretEnv val[string]        `yaml:"hs256_secret_env"`
	PublicKeyFiles val[[]val[string]] `yaml:"public_key_files"`
	RolesClaim     val[string]        `yaml:"roles_claim"`
	Leeway         val[time.Duration] `yaml:"leeway"`
}

type yamlService struct {
	At      at
	Target  val[target]   `yaml:"target"`
	KeyEnv  val[string]   `yaml:"key_env"`
	Key     val[string]   `yaml:"key"`
	Timeout val[positive] `yaml:"timeout"`

	TLS       yamlLinkTLS `yaml:"tls"`
	Plaintext val[bool]   `yaml:"plaintext"`
}

type yamlVersion struct {
	Extends   val[string]           `yaml:"extends"`
	Resources entries[yamlResource] `yaml:"resources"`
}

// yamlRoute is what resources and actions both set for their routes.
type yamlRoute struct {
	Service     val[string]        `yaml:"service"`
	Access      val[Access]        `yaml:"access"`
	CacheTTL    val[time.Duration] `yaml:"cache_ttl"`
	Cache       val[bool]          `yaml:"cache"`
	Coalesce    val[bool]          `yaml:"coalesce"`
	Visibility  val[text]          `yaml:"visibility"`
	Timeout     val[positive]      `yaml:"timeout"`
	Idempotency val[text]          `yaml:"idempotency"`
}

// yamlResource is a mapping, or one line naming the service.
type yamlResource struct {
	At at
	yamlRoute
	Singular val[string]      `yaml:"singular"`
	CRUD     val[[]val[text]] `yaml:"crud"`
	Actions  []yamlAction     `yaml:"actions"`
}

func (r *yamlResource) unmarshal(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		r.At = at{n.Line, path}
		r.Service.unmarshal(d, n, path)
		return
	}
	type plain yamlResource
	d.mapping(n, path, reflect.ValueOf((*plain)(r)).Elem())
}

type yamlAction struct {
	At      at
	Name    val[string]      `yaml:"name"`
	Method  val[text]        `yaml:"method"`
	Methods val[[]val[text]] `yaml:"methods"`
	On      val[text]        `yaml:"on"`
	Action  val[string]      `yaml:"action"`
	yamlRoute
	Pipeline val[yamlSteps] `yaml:"pipeline"`
	Result   val[string]    `yaml:"result"`
}

// yamlSteps is a pipeline: a list of at least one step.
type yamlSteps []yamlStep

func (s *yamlSteps) unmarshal(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.addf(n.Line, path, "expected a list of steps, got %s", describe(n))
		return
	}
	d.decode(n, path, reflect.ValueOf((*[]yamlStep)(s)).Elem())
}

// yamlStep is one action, or a parallel group.
type yamlStep struct {
	yamlUndo
	As       val[string]   `yaml:"as"`
	Undo     val[yamlUndo] `yaml:"undo"`
	Parallel *val[[]yamlStep]
}

func (s *yamlStep) unmarshal(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode || !hasKey(n, "parallel") {
		type plain yamlStep
		d.mappingOf(n, path, "a step", (*plain)(s))
		return
	}
	var g struct {
		At       at
		Parallel val[[]yamlStep] `yaml:"parallel"`
	}
	d.mapping(n, path, reflect.ValueOf(&g).Elem())
	s.At, s.Parallel = g.At, &g.Parallel
}

// yamlUndo is a step's compensating action, and what a step has of an
// action.
type yamlUndo struct {
	At      at
	Service val[string]     `yaml:"service"`
	Action  val[string]     `yaml:"action"`
	ID      val[text]       `yaml:"id"`
	Body    val[*yaml.Node] `yaml:"body"`
}

func (u *yamlUndo) unmarshal(d *decoder, n *yaml.Node, path string) {
	type plain yamlUndo
	d.mappingOf(n, path, "an action", (*plain)(u))
}

// hasKey reports whether a mapping node has a key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i < len(n.Content); i += 2 {
		if deref(n.Content[i]).Value == key {
			return true
		}
	}
	return false
}

// nameList is one non-empty string or a list of them.
type nameList []string

func (l *nameList) unmarshal(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.SequenceNode {
		*l = d.names(n, path)
	} else if s, ok := d.name(n, path); ok {
		*l = []string{s}
	}
}

// target is a socket.Dial target: a string as it is, or a list of
// "host:port" addresses as "static:///a,b".
type target string

func (t *target) unmarshal(d *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.SequenceNode {
		s, _ := d.name(n, path)
		*t = target(s)
		return
	}
	var addrs []string
	d.items(n, path, func(_ int, v *yaml.Node, p string) {
		a, ok := d.name(v, p)
		if !ok {
			return
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" || strings.ContainsAny(a, ", \t") {
			d.addf(deref(v).Line, p, `expected an address such as "users:9000", got %q`, a)
			return
		}
		addrs = append(addrs, a)
	})
	if len(n.Content) == 0 {
		d.addf(n.Line, path, "lists no addresses")
	}
	if len(addrs) > 0 {
		*t = target("static:///" + strings.Join(addrs, ","))
	}
}

// unmarshal reads who may call: "anonymous", "authenticated" or
// {roles: [..]}.
func (a *Access) unmarshal(d *decoder, n *yaml.Node, path string) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "anonymous":
			a.Anonymous = true
		case "authenticated":
		default:
			d.addf(n.Line, path, `expected "anonymous", "authenticated" or {roles: [...]}, got %s`, describe(n))
		}
		return
	}
	var r struct {
		Roles val[[]string] `yaml:"roles"`
	}
	d.mapping(n, path, reflect.ValueOf(&r).Elem())
	if n.Kind == yaml.MappingNode && len(r.Roles.V) == 0 && (!r.Roles.Set || r.Roles.OK) {
		d.addf(n.Line, path, "roles must list at least one role")
	}
	a.Roles = r.Roles.V
}
