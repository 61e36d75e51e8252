package config

import (
	"errors"
	"net"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"
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

	Events val[yamlEvents] `yaml:"events"`
}

type yamlEvents struct {
	NATSURL  val[string]          `yaml:"nats_url"`
	Root     val[string]          `yaml:"root"`
	Replicas val[int64]           `yaml:"replicas"`
	Windows  val[seq[yamlWindow]] `yaml:"windows"`
}

type yamlWindow struct {
	At       at            `yaml:",inline"`
	Prefix   val[string]   `yaml:"prefix"`
	MaxAge   val[positive] `yaml:"max_age"`
	MaxBytes val[int64]    `yaml:"max_bytes"`
}

type yamlListenTLS struct {
	At           at          `yaml:",inline"`
	CertFile     val[string] `yaml:"cert_file"`
	KeyFile      val[string] `yaml:"key_file"`
	ClientCAFile val[string] `yaml:"client_ca_file"`
}

type yamlLinkTLS struct {
	At         at          `yaml:",inline"`
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
	APIKeys seq[yamlAPIKey] `yaml:"api_keys"`
	JWT     seq[yamlJWT]    `yaml:"jwt"`
}

type yamlAPIKey struct {
	At        at            `yaml:",inline"`
	Name      val[string]   `yaml:"name"`
	Hash      val[text]     `yaml:"hash"`
	SecretEnv val[string]   `yaml:"secret_env"`
	Subject   val[string]   `yaml:"subject"`
	Roles     val[[]string] `yaml:"roles"`
}

type yamlJWT struct {
	At             at                    `yaml:",inline"`
	Issuer         val[string]           `yaml:"issuer"`
	Audience       val[nameList]         `yaml:"audience"`
	HS256SecretEnv val[string]           `yaml:"hs256_secret_env"`
	PublicKeyFiles val[seq[val[string]]] `yaml:"public_key_files"`
	RolesClaim     val[string]           `yaml:"roles_claim"`
	Leeway         val[time.Duration]    `yaml:"leeway"`
}

type yamlService struct {
	At      at            `yaml:",inline"`
	Target  val[target]   `yaml:"target"`
	KeyEnv  val[string]   `yaml:"key_env"`
	Key     val[string]   `yaml:"key"`
	Timeout val[positive] `yaml:"timeout"`

	TLS       yamlLinkTLS `yaml:"tls"`
	Plaintext val[bool]   `yaml:"plaintext"`
	Transport val[string] `yaml:"transport"`
	NATSURL   val[string] `yaml:"nats_url"`
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
	At        at `yaml:",inline"`
	yamlRoute `yaml:",inline"`
	Singular  val[string]         `yaml:"singular"`
	CRUD      val[seq[val[text]]] `yaml:"crud"`
	Actions   seq[yamlAction]     `yaml:"actions"`
	Conflate  val[bool]           `yaml:"conflate"`
}

// UnmarshalYAML reads the one-line form as the service's name.
func (r *yamlResource) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		r.At = at{n: n}
		return r.Service.UnmarshalYAML(n)
	case yaml.MappingNode:
		type plain yamlResource
		return load(n, (*plain)(r))
	}
	return invalidf(n, "expected a mapping, got %s", describe(n))
}

type yamlAction struct {
	At        at                  `yaml:",inline"`
	Name      val[string]         `yaml:"name"`
	Method    val[text]           `yaml:"method"`
	Methods   val[seq[val[text]]] `yaml:"methods"`
	On        val[text]           `yaml:"on"`
	Action    val[string]         `yaml:"action"`
	yamlRoute `yaml:",inline"`
	Pipeline  val[yamlSteps] `yaml:"pipeline"`
	Result    val[string]    `yaml:"result"`
}

// yamlSteps is a pipeline: a list of at least one step.
type yamlSteps []yamlStep

// UnmarshalYAML reads the steps.
func (s *yamlSteps) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return invalidf(n, "expected a list of steps, got %s", describe(n))
	}
	return load(n, (*seq[yamlStep])(s))
}

// yamlStep is one action, or a parallel group.
type yamlStep struct {
	yamlCall `yaml:",inline"`
	As       val[string]         `yaml:"as"`
	Undo     val[yamlUndo]       `yaml:"undo"`
	Parallel *val[seq[yamlStep]] `yaml:"-"`
}

// UnmarshalYAML reads an action, or a group when the mapping has the key
// parallel.
func (s *yamlStep) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode || !hasKey(n, "parallel") {
		type plain yamlStep
		return mappingOf(n, "a step", (*plain)(s))
	}
	var g struct {
		At       at                 `yaml:",inline"`
		Parallel val[seq[yamlStep]] `yaml:"parallel"`
	}
	err := load(n, &g)
	s.At, s.Parallel = g.At, &g.Parallel
	return err
}

// yamlCall is what a step and its undo have of an action.
type yamlCall struct {
	At      at              `yaml:",inline"`
	Service val[string]     `yaml:"service"`
	Action  val[string]     `yaml:"action"`
	ID      val[text]       `yaml:"id"`
	Body    val[*yaml.Node] `yaml:"body"`
}

// yamlUndo is a step's compensating action.
type yamlUndo yamlCall

// UnmarshalYAML reads the action.
func (u *yamlUndo) UnmarshalYAML(n *yaml.Node) error {
	return mappingOf(n, "an action", (*yamlCall)(u))
}

// mappingOf decodes a mapping into v, refusing any other node as not
// being what ("a step") it should be.
func mappingOf(n *yaml.Node, what string, v any) error {
	if n.Kind != yaml.MappingNode {
		return invalidf(n, "expected %s (a mapping), got %s", what, describe(n))
	}
	return load(n, v)
}

// hasKey reports whether a mapping node has a key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// nameList is one non-empty string or a list of them.
type nameList []string

// UnmarshalYAML reads one name or a list of them.
func (l *nameList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.SequenceNode {
		s, err := names(n)
		*l = s
		return err
	}
	s, err := name(n)
	if err == nil {
		*l = []string{s}
	}
	return err
}

// target is a caller.Dial target: a string as it is, or a list of
// "host:port" addresses as "static:///a,b".
type target string

// UnmarshalYAML reads the target.
func (t *target) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		s, err := name(n)
		*t = target(s)
		return err
	}
	var addrs []string
	var errs []error
	for _, v := range n.Content {
		a, err := name(deref(v))
		if err == nil {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" || strings.ContainsAny(a, ", \t") {
				errs = append(errs, invalidf(deref(v), `expected an address such as "users:9000", got %q`, a))
				continue
			}
			addrs = append(addrs, a)
		}
		errs = append(errs, err)
	}
	if len(n.Content) == 0 {
		errs = append(errs, invalidf(n, "lists no addresses"))
	}
	if len(addrs) > 0 {
		*t = target("static:///" + strings.Join(addrs, ","))
	}
	return errors.Join(errs...)
}

// readAccess reads who may call: "anonymous", "authenticated" or
// {roles: [..]}.
func readAccess(a *Access, n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "anonymous":
			a.Anonymous = true
		case "authenticated":
		default:
			return invalidf(n, `expected "anonymous", "authenticated" or {roles: [...]}, got %s`, describe(n))
		}
		return nil
	}
	var r struct {
		Roles val[[]string] `yaml:"roles"`
	}
	if n.Kind != yaml.MappingNode {
		return invalidf(n, "expected a mapping, got %s", describe(n))
	}
	err := load(n, &r)
	if len(r.Roles.V) == 0 && (!r.Roles.Set || r.Roles.OK) {
		err = errors.Join(err, invalidf(n, "roles must list at least one role"))
	}
	a.Roles = r.Roles.V
	return err
}
