package gateway

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tlsfiles"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// WithServiceTLS sets the TLS of the links to services whose
// configuration sets none (neither service_tls nor their own tls) and
// that are not plaintext: true. The command's -service-tls-* flags use it.
// Default: the configuration's.
func WithServiceTLS(t *config.LinkTLS) Option { return func(o *options) { o.serviceTLS = t } }

// WithInsecurePlaintext allows plaintext links to services at targets
// other than loopback, as the configuration's plaintext: true does.
// Default: refused, and the configuration does not apply.
func WithInsecurePlaintext() Option { return func(o *options) { o.insecurePlaintext = true } }

// linkTLS is the TLS of the gateway's link to svc (nil: plaintext), or
// the refusal of a plaintext link that leaves the machine.
func (g *Gateway) linkTLS(cfg *config.Config, svc *config.Service) (*config.LinkTLS, error) {
	t := svc.TLS
	if t == nil && !svc.Plaintext {
		t = g.opts.serviceTLS
	}
	if t == nil && !svc.Plaintext && !cfg.Plaintext && !g.opts.insecurePlaintext && !tlsfiles.LoopbackTarget(svc.Target) {
		return nil, tlsfiles.PlaintextDialError(svc.Name, svc.Target,
			"set service_tls or its tls in the configuration (or -service-tls-ca), or allow it with plaintext: true (or -insecure-plaintext)")
	}
	return t, nil
}

// linkID tells links apart in clientKey: the same files, the same client.
func linkID(t *config.LinkTLS) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("%q %q %q %q", t.CAFile, t.CertFile, t.KeyFile, t.ServerName)
}

// linkDial is the dial options of a link with TLS t to target.
func linkDial(t *config.LinkTLS, target string) []caller.Option {
	if t == nil {
		return nil
	}
	creds := credentials.NewTLS(tlsfiles.ForTarget(t.Config, target))
	return []caller.Option{caller.WithGRPCDialOptions(grpc.WithTransportCredentials(creds))}
}

// listenTLS is the listeners' TLS: the option's, else the configuration's
// (nil: plaintext), or the refusal to serve plaintext off loopback.
func listenTLS(o RunOptions, cfg *config.Config) (*tls.Config, error) {
	t := o.ListenTLS
	if t == nil {
		var err error
		lt := cfg.ListenTLS
		if t, err = (tlsfiles.Server{CertFile: lt.CertFile, KeyFile: lt.KeyFile, ClientCAFile: lt.ClientCAFile}).Config(); err != nil {
			return nil, fmt.Errorf("listen_tls: %w", err)
		}
	}
	if t != nil || cfg.Plaintext || o.InsecurePlaintext {
		return t, nil
	}
	const how = "set listen_tls in the configuration or -tls-cert and -tls-key, or allow it with plaintext: true or -insecure-plaintext"
	for _, l := range []struct{ what, addr string }{{"REST", o.HTTPAddr}, {"gRPC", o.GRPCAddr}} {
		if !tlsfiles.LoopbackAddr(l.addr) {
			return nil, tlsfiles.PlaintextListenError(l.what, l.addr, how)
		}
	}
	return nil, nil
}

// serveHTTP serves REST on lis, over TLS when t is set.
func serveHTTP(hs *http.Server, lis net.Listener, t *tls.Config) error {
	if t == nil {
		return hs.Serve(lis)
	}
	hs.TLSConfig = t.Clone()
	return hs.ServeTLS(lis, "", "")
}

// grpcCreds is the gRPC listener's options for TLS t.
func grpcCreds(t *tls.Config) []grpc.ServerOption {
	if t == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(t))}
}
