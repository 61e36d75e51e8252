package gateway_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tlsfiles/tlstest"
)

const plainYAML = `
services:
  users: {target: "dns:///users.example:9000"%s}
versions:
  v1:
    resources:
      users: {service: users, access: anonymous}
`

// TestPlaintextLinkRefused: a plaintext link to a target off loopback is
// refused unless the configuration or an option allows it.
func TestPlaintextLinkRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, extra string
		opts        []gateway.Option
		refused     bool
	}{
		{"refused", "", nil, true},
		{"service plaintext", ", plaintext: true", nil, false},
		{"option", "", []gateway.Option{gateway.WithInsecurePlaintext()}, false},
		{"TLS option", "", []gateway.Option{gateway.WithServiceTLS(&config.LinkTLS{Config: &tls.Config{MinVersion: tls.VersionTLS12}})}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("gateway.yaml", []byte(strings.Replace(plainYAML, "%s", tc.extra, 1)), nil)
			if err != nil {
				t.Fatal(err)
			}
			g, err := gateway.New(cfg, tc.opts...)
			if tc.refused {
				want := "refusing to reach service users in plaintext at dns:///users.example:9000 (not loopback)"
				if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v; want one line starting %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			g.Close(context.Background())
		})
	}
	cfg, err := config.Parse("gateway.yaml", []byte("plaintext: true\n"+strings.Replace(plainYAML, "%s", "", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatalf("plaintext: true at the top: %v", err)
	}
	g.Close(context.Background())
}

// TestPlaintextListenerRefused: Run refuses to serve plaintext on every
// interface, in one line, before it listens.
func TestPlaintextListenerRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(plainYAML, "%s", ", plaintext: true", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ http, grpc, want string }{
		{"0.0.0.0:0", "127.0.0.1:0", "refusing to serve REST in plaintext on 0.0.0.0:0 (not loopback): "},
		{"127.0.0.1:0", ":0", "refusing to serve gRPC in plaintext on :0 (not loopback): "},
	} {
		err := gateway.Run(context.Background(), gateway.RunOptions{ConfigPath: path, HTTPAddr: tc.http, GRPCAddr: tc.grpc})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Run = %v; want one line starting %q", err, tc.want)
		}
	}
}

// TestListenTLS: listen_tls serves REST over TLS, requiring a client
// certificate when client_ca_file is set; on every interface, without
// plaintext allowed.
func TestListenTLS(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t, "edge CA")
	caFile := ca.File(t)
	dir := filepath.Dir(caFile)
	ca.Issue(t, "gateway", "127.0.0.1")
	clientCert, clientKey := ca.Issue(t, "client")
	path := filepath.Join(dir, "gateway.yaml")
	yaml := "listen_tls: {cert_file: gateway.crt, key_file: gateway.key, client_ca_file: ca.crt}\n" +
		strings.Replace(plainYAML, "%s", ", plaintext: true", 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan gateway.Addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- gateway.Run(ctx, gateway.RunOptions{ConfigPath: path, HTTPAddr: "0.0.0.0:0", GRPCAddr: "0.0.0.0:0", Ready: func(a gateway.Addrs) { addrs <- a }})
	}()
	var a gateway.Addrs
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	url := "https://127.0.0.1" + a.HTTP[strings.LastIndex(a.HTTP, ":"):] + "/v9/nothing"
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(pem)
	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		status int
	}{
		{"with a client certificate", []tls.Certificate{pair}, http.StatusNotFound},
		{"without", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: tc.certs, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			res, err := c.Get(url)
			if tc.status == 0 {
				if err == nil {
					res.Body.Close()
					t.Fatalf("answered %d without a client certificate", res.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.status || res.ProtoMajor != 2 {
				t.Fatalf("status %d over %s; want %d over HTTP/2", res.StatusCode, res.Proto, tc.status)
			}
		})
	}
}
