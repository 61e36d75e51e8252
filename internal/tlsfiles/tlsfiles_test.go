package tlsfiles_test

import (
	"crypto/tls"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/internal/tlsfiles"
	"github.com/streamgate/streamgate/internal/tlsfiles/tlstest"
)

// serve accepts TLS connections with cfg on loopback, completing each
// handshake and answering "ok", until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = lis.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			if c.(*tls.Conn).Handshake() == nil {
				_, _ = io.WriteString(c, "ok")
			}
			_ = c.Close()
		}
	}()
	return lis.Addr().String()
}

// dial connects with cfg and returns the server's certificate's name, or
// the handshake's error.
func dial(addr string, cfg *tls.Config) (string, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		return "", err
	}
	if string(b) != "ok" {
		return "", io.ErrUnexpectedEOF
	}
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestMutualTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	cert, key := ca.Issue(t, "server", "127.0.0.1")
	srv, err := tlsfiles.Server{CertFile: cert, KeyFile: key, ClientCAFile: ca.File(t)}.Config()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	goodCert, goodKey := ca.Issue(t, "client")
	badCert, badKey := other.Issue(t, "intruder")
	for _, tc := range []struct {
		name   string
		client tlsfiles.Client
		ok     bool
	}{
		{"client signed by the CA", tlsfiles.Client{CAFile: ca.File(t), CertFile: goodCert, KeyFile: goodKey}, true},
		{"client signed by another CA", tlsfiles.Client{CAFile: ca.File(t), CertFile: badCert, KeyFile: badKey}, false},
		{"no client certificate", tlsfiles.Client{CAFile: ca.File(t)}, false},
		{"server not trusted", tlsfiles.Client{CAFile: other.File(t), CertFile: goodCert, KeyFile: goodKey}, false},
		{"wrong server name", tlsfiles.Client{CAFile: ca.File(t), CertFile: goodCert, KeyFile: goodKey, ServerName: "users"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.client.Config()
			if err != nil {
				t.Fatal(err)
			}
			name, err := dial(addr, cfg)
			if tc.ok && (err != nil || name != "server") {
				t.Fatalf("dial = %q, %v; want server", name, err)
			}
			if !tc.ok && err == nil {
				t.Fatal("the handshake succeeded")
			}
		})
	}
}

// TestCertificateReload: a certificate rewritten in place serves the next
// handshake; a half-written pair keeps the previous one.
func TestCertificateReload(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	cert, key := ca.Issue(t, "first", "127.0.0.1")
	srv, err := tlsfiles.Server{CertFile: cert, KeyFile: key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	cli, err := tlsfiles.Client{CAFile: ca.File(t)}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if name, err := dial(addr, cli); name != "first" {
		t.Fatalf("dial = %q, %v; want first", name, err)
	}
	cert2, key2 := ca.Issue(t, "second", "127.0.0.1")
	copyFile(t, cert2, cert) // the certificate before its key: does not load
	if name, err := dial(addr, cli); name != "first" {
		t.Fatalf("half-rotated: dial = %q, %v; want first", name, err)
	}
	copyFile(t, key2, key)
	if name, err := dial(addr, cli); name != "second" {
		t.Fatalf("rotated: dial = %q, %v; want second", name, err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Another size than the old file's, so the change shows even within
	// the file system's timestamp resolution.
	b = append(b, '\n')
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfigErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	cert, key := ca.Issue(t, "x")
	for _, tc := range []struct {
		name string
		load func() error
		want string
	}{
		{"server without key", func() error { _, err := tlsfiles.Server{CertFile: cert}.Config(); return err }, "both a certificate and a key"},
		{"client CA only", func() error { _, err := tlsfiles.Server{ClientCAFile: ca.File(t)}.Config(); return err }, "both a certificate and a key"},
		{"missing file", func() error {
			_, err := tlsfiles.Server{CertFile: cert + ".nope", KeyFile: key}.Config()
			return err
		}, "no such file"},
		{"CA not PEM", func() error { _, err := tlsfiles.Client{CAFile: key}.Config(); return err }, "no PEM certificate"},
		{"client cert without key", func() error { _, err := tlsfiles.Client{CertFile: cert}.Config(); return err }, "both a certificate and a key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.load(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
		})
	}
	if cfg, err := (tlsfiles.Server{}).Config(); cfg != nil || err != nil {
		t.Fatalf("no files: %v, %v; want nil, nil", cfg, err)
	}
}

func TestLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true}, {"127.0.0.2:1", true}, {"[::1]:9000", true}, {"localhost:80", true},
		{":8080", false}, {"0.0.0.0:8080", false}, {"[::]:80", false}, {"10.0.0.1:80", false}, {"users:9000", false}, {"nonsense", false},
	} {
		if got := tlsfiles.LoopbackAddr(tc.addr); got != tc.want {
			t.Errorf("LoopbackAddr(%q) = %v; want %v", tc.addr, got, tc.want)
		}
	}
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"127.0.0.1:9101", true}, {"dns:///localhost:9000", true}, {"static:///127.0.0.1:1,[::1]:2", true},
		{"127.0.0.1:1,127.0.0.1:2", true}, {"passthrough:///127.0.0.1:1", true}, {"unix:///tmp/s.sock", true},
		{"dns:///users:9000", false}, {"dns://8.8.8.8/localhost:9000", true}, {"static:///127.0.0.1:1,10.0.0.2:2", false},
		{"users:9000", false}, {"", false},
	} {
		if got := tlsfiles.LoopbackTarget(tc.target); got != tc.want {
			t.Errorf("LoopbackTarget(%q) = %v; want %v", tc.target, got, tc.want)
		}
	}
}

func TestForTarget(t *testing.T) {
	base := &tls.Config{}
	for _, tc := range []struct{ target, want string }{
		{"dns:///users:9000", "users"},
		{"dns://10.0.0.10:53/users.shop.svc.cluster.local:9000", "users.shop.svc.cluster.local"},
		{"static:///a:1,b:2", ""},
		{"users:9000", ""},
		{"passthrough:///users:9000", ""},
	} {
		if got := tlsfiles.ForTarget(base, tc.target).ServerName; got != tc.want {
			t.Errorf("ForTarget(%q).ServerName = %q; want %q", tc.target, got, tc.want)
		}
	}
	if base.ServerName != "" {
		t.Error("ForTarget changed its argument")
	}
	named := &tls.Config{ServerName: "fixed"}
	if got := tlsfiles.ForTarget(named, "dns:///users:9000"); got != named {
		t.Error("ForTarget replaced a server name that was set")
	}
	if tlsfiles.ForTarget(nil, "dns:///users:9000") != nil {
		t.Error("ForTarget(nil) is not nil")
	}
}
