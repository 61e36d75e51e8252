package stack_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/internal/tlsfiles"
	"github.com/streamgate/streamgate/internal/tlsfiles/tlstest"
	"github.com/streamgate/streamgate/services/payments"
	"github.com/streamgate/streamgate/services/run"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/tools/internal/polyglottest"
	"github.com/streamgate/streamgate/tools/internal/resttest"
)

// TestMutualTLS runs the stack's four services over mutual TLS with
// certificates made here: each requires a client certificate its CA
// signed, orders reaches inventory (prices) with its own, and the real
// gateway, configured by stack.yaml plus service_tls and listen_tls,
// serves REST over TLS. A purchase goes through; a gateway whose client
// certificate another CA signed gets no stream, and its clients a 503
// envelope that does not say why.
func TestMutualTLS(t *testing.T) {
	polyglottest.GoOnly(t, "it starts its own Go services over mutual TLS (the Node and Python services have no TLS flags in their contract)")
	ca, other := tlstest.NewCA(t, "streamgate CA"), tlstest.NewCA(t, "another CA")
	caFile := ca.File(t)
	serverTLS := func(name string) *tls.Config {
		cert, key := ca.Issue(t, name, "127.0.0.1")
		cfg, err := tlsfiles.Server{CertFile: cert, KeyFile: key, ClientCAFile: caFile}.Config()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ordersCert, ordersKey := ca.Issue(t, "orders-client")
	callTLS, err := tlsfiles.Client{CAFile: caFile, CertFile: ordersCert, KeyFile: ordersKey}.Config()
	if err != nil {
		t.Fatal(err)
	}

	sb := payments.NewSandbox("A", 0)
	sandboxURL, err := sb.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	keys := []keyring.Key{{Name: "gateway", Secret: "service-key", Delegate: true, Roles: []string{"admin"}}}
	targets := map[string]string{}
	start := func(name string, o run.Options) {
		o.Service, o.Listen, o.Store, o.Keys, o.CallKey = name, "127.0.0.1:0", run.StoreMemory, keys, "service-key"
		o.TLS = serverTLS(name)
		ready, failed := make(chan string, 1), make(chan error, 1)
		o.Ready = func(addr string) { ready <- addr }
		wg.Go(func() {
			if err := run.Run(ctx, o); err != nil {
				failed <- err
			}
		})
		select {
		case targets[name] = <-ready:
		case err := <-failed:
			t.Fatalf("%s: %v", name, err)
		}
	}
	start("users", run.Options{})
	start("inventory", run.Options{})
	start("orders", run.Options{Inventory: targets["inventory"], CallTLS: callTLS})
	start("payments", run.Options{Gateways: map[string]string{"A": sandboxURL}, SettleInterval: -1})

	stackYAML, err := os.ReadFile(configPath)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"STREAMGATE_SERVICE_KEY": "service-key", "STREAMGATE_ADMIN_KEY": adminKey, "STREAMGATE_JWT_SECRET": jwtSecret}
	// gateway starts a gateway whose client certificate issuer signed, and
	// returns a client of its REST edge (over TLS).
	gatewayOf := func(issuer *tlstest.CA) *resttest.Client {
		dir := t.TempDir()
		cert, key := issuer.Issue(t, "gateway", "127.0.0.1")
		path := filepath.Join(dir, "gateway.yaml")
		yaml := fmt.Sprintf("service_tls: {ca_file: %q, cert_file: %q, key_file: %q}\nlisten_tls: {cert_file: %q, key_file: %q}\n%s",
			caFile, cert, key, cert, key, stackYAML)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		addrs, failed := make(chan gateway.Addrs, 1), make(chan error, 1)
		wg.Go(func() {
			if err := gateway.Run(ctx, gateway.RunOptions{
				ConfigPath: path, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
				Env: func(k string) string { return env[k] }, Targets: targets,
				Ready: func(a gateway.Addrs) { addrs <- a },
			}); err != nil {
				failed <- err
			}
		})
		var a gateway.Addrs
		select {
		case a = <-addrs:
		case err := <-failed:
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(issuer.File(t))
		pool.AppendCertsFromPEM(pem)
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &resttest.Client{Base: "https://" + a.HTTP, HTTP: &http.Client{Transport: tr, Timeout: requestTimeout}}
	}

	rest := gatewayOf(ca)
	do := func(cred, method, path string, body any, header ...string) resttest.Reply {
		t.Helper()
		r, err := rest.Do(cred, method, path, body, header...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	alice := as(t, "alice")
	do(adminKey, "POST", "/v1/users", map[string]any{"id": "alice", "name": "Alice", "email": "alice@example.com"}).Want(t, http.StatusCreated, "")
	do(adminKey, "POST", "/v1/items", map[string]any{"id": "book", "name": "Book", "price_cents": 1500, "stock": 10}).Want(t, http.StatusCreated, "")
	// orders asks inventory for the price, over its own mutual TLS.
	order := resttest.Into[struct {
		ID         string `json:"id"`
		TotalCents int64  `json:"total_cents"`
	}](t, do(alice, "POST", "/v1/orders", map[string]any{"lines": []map[string]any{{"item_id": "book", "quantity": 2}}}).Want(t, http.StatusCreated, ""))
	if order.TotalCents != 3000 {
		t.Fatalf("order total %d, want 3000", order.TotalCents)
	}
	do(alice, "POST", "/v1/orders/"+order.ID+"/pay", map[string]any{"gateway": "A", "card": cardOK}, "Idempotency-Key", "pay-"+order.ID).Want(t, http.StatusOK, "")
	paid := resttest.Into[struct{ Status string }](t, do(alice, "GET", "/v1/orders/"+order.ID, nil).Want(t, http.StatusOK, ""))
	if paid.Status != "paid" {
		t.Fatalf("order status %q, want paid", paid.Status)
	}

	// A gateway whose client certificate another CA signed: every
	// service refuses the handshake; its clients get 503 UNAVAILABLE in
	// the envelope, with nothing about certificates or addresses.
	intruder := gatewayOf(other)
	r, err := intruder.Do("", "GET", "/v1/items/book", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Want(t, http.StatusServiceUnavailable, socket.CodeUnavailable)
	for _, leak := range []string{"certificate", "tls", "x509", "handshake", "127.0.0.1", "authority"} {
		if strings.Contains(strings.ToLower(r.Raw), leak) {
			t.Errorf("the 503 says %q: %s", leak, r.Raw)
		}
	}
	// The same request through the trusted gateway still answers.
	do("", "GET", "/v1/items/book", nil).Want(t, http.StatusOK, "")
}
