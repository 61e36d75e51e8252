package config_test

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tlsfiles/tlstest"
)

// TestTLS: service_tls is every link's, a service's tls overrides it field
// by field, plaintext: true turns it off, and the files load with the
// configuration, relative to its directory.
func TestTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "ca")
	caFile := ca.File(t)
	dir := filepath.Dir(caFile)
	ca.Issue(t, "gateway", "127.0.0.1")
	yaml := `
plaintext: true
listen_tls: {cert_file: gateway.crt, key_file: gateway.key, client_ca_file: ca.crt}
service_tls: {ca_file: ca.crt, cert_file: gateway.crt, key_file: gateway.key}
services:
  users: {target: "dns:///users:9000"}
  orders: {target: "dns:///orders:9000", tls: {server_name: orders.internal}}
  legacy: {target: "legacy:9000", plaintext: true}
`
	cfg, err := config.Parse(filepath.Join(dir, "gateway.yaml"), []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Plaintext {
		t.Error("plaintext not read")
	}
	if want := (config.ListenTLS{CertFile: filepath.Join(dir, "gateway.crt"), KeyFile: filepath.Join(dir, "gateway.key"), ClientCAFile: caFile}); cfg.ListenTLS != want {
		t.Errorf("listen_tls = %+v; want %+v", cfg.ListenTLS, want)
	}
	users, orders, legacy := cfg.Services["users"], cfg.Services["orders"], cfg.Services["legacy"]
	if users.TLS == nil || users.TLS.Config == nil || users.TLS.CAFile != caFile || users.TLS.ServerName != "" || users.TLS.Config.GetClientCertificate == nil {
		t.Errorf("users: TLS %+v; want service_tls, loaded", users.TLS)
	}
	if orders.TLS == nil || orders.TLS.ServerName != "orders.internal" || orders.TLS.Config.ServerName != "orders.internal" || orders.TLS.CAFile != caFile {
		t.Errorf("orders: TLS %+v; want service_tls with server_name orders.internal", orders.TLS)
	}
	if legacy.TLS != nil || !legacy.Plaintext {
		t.Errorf("legacy: TLS %+v, plaintext %v; want none, true", legacy.TLS, legacy.Plaintext)
	}
}

func TestTLSErrors(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "ca")
	dir := filepath.Dir(ca.File(t))
	ca.Issue(t, "gateway")
	for _, tt := range []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"listener without key", "listen_tls: {cert_file: gateway.crt}\n", 1, "listen_tls: TLS needs both a certificate and a key file"},
		{"missing CA", "service_tls: {ca_file: nope.crt}\nservices: {users: {target: a}}\n", 1, "service_tls: open " + filepath.Join(dir, "nope.crt")},
		{"service's own file", "services:\n  users: {target: a, tls: {ca_file: gateway.key}}\n", 2, "services.users.tls: " + filepath.Join(dir, "gateway.key") + ": no PEM certificate"},
		{"tls and plaintext", "services:\n  users: {target: a, plaintext: true, tls: {ca_file: ca.crt}}\n", 2, "services.users.plaintext: set tls or plaintext: true, not both"},
		{"unknown key", "service_tls: {ca: x}\n", 1, `service_tls: unknown key "ca"`},
		{"redis twice", "redis: redis://a:6379\nredis_env: REDIS_URL\n", 2, "redis_env: set redis or redis_env, not both"},
		{"redis env unset", "redis_env: NOPE\n", 1, "redis_env: environment variable NOPE is unset"},
		{"redis env not a URL", "redis_env: BAD_URL\n", 1, "redis_env: expected a URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"BAD_URL": "http://x"}
			_, err := config.Parse(filepath.Join(dir, "gateway.yaml"), []byte(tt.yaml), func(k string) string { return env[k] })
			prefix := filepath.Join(dir, "gateway.yaml") + ":"
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) || strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("err = %v; want one line with %q", err, tt.want)
			}
			if got := strings.SplitN(strings.TrimPrefix(err.Error(), prefix), ":", 2)[0]; got != strconv.Itoa(tt.line) {
				t.Errorf("line %s; want %d", got, tt.line)
			}
		})
	}
	env := func(string) string { return "redis://:secret@redis:6379/0" }
	cfg, err := config.Parse("gateway.yaml", []byte("redis_env: REDIS_URL\n"), env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Redis != "redis://:secret@redis:6379/0" {
		t.Fatalf("redis_env: %q", cfg.Redis)
	}
}
