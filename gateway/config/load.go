package config

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.yaml.in/yaml/v4"
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
	ps := &problems{file: path, index: index{paths: map[*yaml.Node]string{}, at: map[pos]*yaml.Node{}, keyIn: map[pos]string{}}}
	var file yaml.Node
	if err := yaml.Unmarshal(data, &file); err != nil {
		var le *yaml.LoadError
		if errors.As(err, &le) {
			ps.addLine(max(le.Mark.Line, 1), "", "%s", le.Message)
		} else {
			ps.addLine(1, "", "%v", err)
		}
		return nil, ps.err()
	}
	var doc yamlConfig
	if len(file.Content) > 0 {
		root := file.Content[0]
		if !checkAliases(ps, root) {
			return nil, ps.err()
		}
		ps.scan(root, "")
		ps.decoding(load(root, &doc))
	}
	l := &loader{problems: ps, files: files{ps, filepath.Dir(path)}, env: env}
	cfg := l.config(&doc)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loader turns a YAML document into a Config.
type loader struct {
	*problems
	files files
	env   func(string) string
	cfg   *Config // what is loaded so far; sections read earlier ones
}

// config validates the document and completes it with defaults. Sections
// are read in dependency order: versions name services, which read http's
// default timeout.
func (l *loader) config(doc *yamlConfig) *Config {
	l.cfg = &Config{Path: l.file}
	l.cfg.HTTP = l.http(&doc.HTTP)
	l.cfg.Auth = l.auth(&doc.Auth)
	l.cfg.Plaintext = doc.Plaintext.V
	l.cfg.ListenTLS = l.files.listenTLS(&doc.ListenTLS)
	l.cfg.Services = l.services(doc.Services, &doc.ServiceTLS)
	l.cfg.Redis = l.redisURL(doc.Redis, doc.RedisEnv)
	l.cfg.RedisTimeout = l.duration(doc.RedisTimeout, 0, 5*time.Second, 250*time.Millisecond)
	l.cfg.RedisGenerationTTL = l.duration(doc.RedisGenerationTTL, 10*time.Minute, 0, 24*time.Hour)
	l.cfg.Versions = l.versions(doc.Versions)
	l.cfg.Events = eventsBlock{l}.read(doc.Events)
	return l.cfg
}

// http completes the REST edge's settings with their defaults.
func (l *loader) http(y *yamlHTTP) HTTP {
	c, i := &y.CORS, &y.Idempotency
	h := HTTP{
		MaxBodyBytes:   l.between(y.MaxBodyBytes, 1<<40, 1<<20),
		MaxJSONDepth:   int(l.between(y.MaxJSONDepth, 1<<16, 64)),
		DefaultTimeout: time.Duration(y.DefaultTimeout.or(positive(10 * time.Second))),
		CORS: CORS{
			AllowedOrigins:   c.AllowedOrigins.V,
			AllowedHeaders:   c.AllowedHeaders.or([]string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id", "X-API-Key"}),
			ExposedHeaders:   c.ExposedHeaders.or([]string{"X-Request-Id", "Location", "ETag", "X-Cache", "Retry-After", "Idempotent-Replayed"}),
			AllowCredentials: c.AllowCredentials.V,
			MaxAge:           c.MaxAge.or(10 * time.Minute),
		},
		Idempotency: IdempotencyStore{
			TTL:        time.Duration(i.TTL.or(positive(24 * time.Hour))),
			MaxEntries: l.between(i.MaxEntries, 1<<32, 100_000),
			MaxBytes:   l.between(i.MaxBytes, 1<<40, 64<<20),
		},
		PaymentRequiredReasons: y.PaymentRequiredReasons.or(defaultPaymentRequiredReasons()),
	}
	for _, r := range h.PaymentRequiredReasons {
		if !reasonRE.MatchString(r) {
			l.addf(y.PaymentRequiredReasons.at, "reason %q: want a lower_snake word, e.g. card_declined", r)
		}
	}
	if h.CORS.AllowCredentials && slices.Contains(h.CORS.AllowedOrigins, "*") {
		l.addf(c.AllowCredentials.at, `credentials cannot be allowed for every origin ("*"); list the origins`)
	}
	return h
}

// defaultPaymentRequiredReasons is http.payment_required_reasons when the
// configuration sets none: the provider refusals the example payments
// service passes on (payments.PaymentRefusals; a gateway test keeps the
// two equal), so that a configuration written before the key existed
// answers them 402 as it always did.
func defaultPaymentRequiredReasons() []string {
	return []string{"card_declined", "insufficient_funds", "expired_card", "invalid_card"}
}

// between is an integer setting of at least 1 and at most maxInt, or def
// when it is not set.
func (l *loader) between(v val[int64], maxInt, def int64) int64 {
	if !v.Set || !v.OK {
		return def
	}
	if v.V < 1 || v.V > maxInt {
		l.addf(v.at, "must be between 1 and %d, got %d", maxInt, v.V)
		return def
	}
	return v.V
}

// duration is a positive duration setting of at least minD and, unless
// maxD is 0, at most maxD; def when it is not set.
func (l *loader) duration(v val[positive], minD, maxD, def time.Duration) time.Duration {
	if !v.Set || !v.OK {
		return def
	}
	d := time.Duration(v.V)
	if d < minD || (maxD > 0 && d > maxD) {
		if maxD > 0 {
			l.addf(v.at, "must be at most %v, got %v", maxD, d)
		} else {
			l.addf(v.at, "must be at least %v, got %v", minD, d)
		}
		return def
	}
	return d
}

// redisURL is the shared-state URL, written or from an env var.
func (l *loader) redisURL(v, env val[string]) string {
	if !env.Set {
		return l.redis(v)
	}
	if v.Set {
		l.addf(env.at, "set redis or redis_env, not both")
		return ""
	}
	url, ok := l.envVar(env)
	if !ok {
		return ""
	}
	env.V = url
	return l.redis(env)
}

// redis checks the shared-state URL.
func (l *loader) redis(v val[string]) string {
	if !v.Set || !v.OK {
		return ""
	}
	u, err := url.Parse(v.V)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		// The URL may hold a password: the message does not repeat it.
		l.addf(v.at, `expected a URL such as "redis://host:6379/0"`)
		return ""
	}
	return v.V
}
