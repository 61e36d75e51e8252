package config

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Load reads a configuration file and parses it with Parse, taking
// environment references from the process environment.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, os.Getenv)
}

// Parse parses, completes and validates a configuration. path names the
// file in errors and anchors relative public_key_files; env resolves
// key_env, secret_env and hs256_secret_env (nil reads every variable as
// unset). The error, when not nil, lists every problem found, one per
// line, each as "FILE:LINE: PATH: problem".
func Parse(path string, data []byte, env func(string) string) (*Config, error) {
	if env == nil {
		env = func(string) string { return "" }
	}
	l := &loader{
		decoder: decoder{problems: &problems{file: path}},
		dir:     filepath.Dir(path),
		env:     env,
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.syntax(err)
		return nil, l.err()
	}
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if root != nil && !l.checkAliases(root) {
		return nil, l.err()
	}
	cfg := l.config(root)
	if err := l.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loader turns a YAML document into a Config.
type loader struct {
	decoder
	dir string // the configuration file's directory
	env func(string) string
	cfg *Config // what is loaded so far; sections read earlier ones
}

// yamlLineRE finds the line in a yaml.v3 syntax error.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax reports a YAML syntax error in the usual form.
func (l *loader) syntax(err error) {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		l.addf(1, "", "%v", err)
		return
	}
	line, _ := strconv.Atoi(m[1])
	l.addf(line, "", "%s", m[2])
}

// config reads the top-level mapping. Sections are read in dependency
// order, not document order: versions name services, which read http's
// default timeout.
func (l *loader) config(root *yaml.Node) *Config {
	l.cfg = &Config{Path: l.file}
	f := l.fields(root, "", "http", "auth", "services", "redis", "versions")
	l.cfg.HTTP = l.http(f["http"], "http")
	l.cfg.Auth = l.auth(f["auth"], "auth")
	l.cfg.Services = l.services(f["services"], "services")
	if n := f["redis"]; n != nil {
		l.cfg.Redis = l.redis(n, "redis")
	}
	l.cfg.Versions = l.versions(f["versions"], "versions")
	return l.cfg
}

// http reads the REST edge's settings and fills in their defaults.
func (l *loader) http(n *yaml.Node, path string) HTTP {
	h := HTTP{
		MaxBodyBytes:   1 << 20,
		MaxJSONDepth:   64,
		DefaultTimeout: 10 * time.Second,
		CORS: CORS{
			AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "X-API-Key"},
			ExposedHeaders: []string{"X-Request-Id", "Location"},
			MaxAge:         10 * time.Minute,
		},
		Idempotency: IdempotencyStore{TTL: 24 * time.Hour, MaxEntries: 100_000, MaxBytes: 64 << 20},
	}
	f := l.fields(n, path, "max_body_bytes", "max_json_depth", "default_timeout", "cors", "idempotency")
	if v := f["max_body_bytes"]; v != nil {
		if x, ok := l.positiveInt(v, join(path, "max_body_bytes"), 1<<40); ok {
			h.MaxBodyBytes = x
		}
	}
	if v := f["max_json_depth"]; v != nil {
		if x, ok := l.positiveInt(v, join(path, "max_json_depth"), 1<<16); ok {
			h.MaxJSONDepth = int(x)
		}
	}
	if v := f["default_timeout"]; v != nil {
		if x, ok := l.duration(v, join(path, "default_timeout"), true); ok {
			h.DefaultTimeout = x
		}
	}
	l.cors(f["cors"], join(path, "cors"), &h.CORS)
	l.idempotencyStore(f["idempotency"], join(path, "idempotency"), &h.Idempotency)
	return h
}

// idempotencyStore reads the bounds of the Idempotency-Key store over
// their defaults.
func (l *loader) idempotencyStore(n *yaml.Node, path string, s *IdempotencyStore) {
	f := l.fields(n, path, "ttl", "max_entries", "max_bytes")
	if v := f["ttl"]; v != nil {
		if x, ok := l.duration(v, join(path, "ttl"), true); ok {
			s.TTL = x
		}
	}
	if v := f["max_entries"]; v != nil {
		if x, ok := l.positiveInt(v, join(path, "max_entries"), 1<<32); ok {
			s.MaxEntries = x
		}
	}
	if v := f["max_bytes"]; v != nil {
		if x, ok := l.positiveInt(v, join(path, "max_bytes"), 1<<40); ok {
			s.MaxBytes = x
		}
	}
}

// cors reads the cross-origin policy over its defaults.
func (l *loader) cors(n *yaml.Node, path string, c *CORS) {
	f := l.fields(n, path, "allowed_origins", "allowed_headers", "exposed_headers", "allow_credentials", "max_age")
	if v := f["allowed_origins"]; v != nil {
		c.AllowedOrigins = l.names(v, join(path, "allowed_origins"))
	}
	if v := f["allowed_headers"]; v != nil {
		c.AllowedHeaders = l.names(v, join(path, "allowed_headers"))
	}
	if v := f["exposed_headers"]; v != nil {
		c.ExposedHeaders = l.names(v, join(path, "exposed_headers"))
	}
	if v := f["allow_credentials"]; v != nil {
		c.AllowCredentials, _ = l.boolean(v, join(path, "allow_credentials"))
	}
	if v := f["max_age"]; v != nil {
		c.MaxAge, _ = l.duration(v, join(path, "max_age"), false)
	}
	if c.AllowCredentials {
		for _, o := range c.AllowedOrigins {
			if o == "*" {
				l.addf(deref(f["allow_credentials"]).Line, join(path, "allow_credentials"),
					`credentials cannot be allowed for every origin ("*"); list the origins`)
			}
		}
	}
}

// redis reads the shared-state URL.
func (l *loader) redis(n *yaml.Node, path string) string {
	s, ok := l.name(n, path)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		// The URL may hold a password: the message does not repeat it.
		l.addf(deref(n).Line, path, `expected a URL such as "redis://host:6379/0"`)
		return ""
	}
	return s
}
