package invoke

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tlsfiles"
	"github.com/streamgate/streamgate/services/socket/caller"
)

// link is the link to svc: an id that tells links apart (equal ids share
// a client) and its dial options; or the refusal of a plaintext link that
// leaves the machine.
func (rs *resources) link(cfg *config.Config, svc *config.Service) (string, []caller.Option, error) {
	t := svc.TLS
	if t == nil && !svc.Plaintext {
		t = rs.opts.ServiceTLS
	}
	if t == nil && !svc.Plaintext && !cfg.Plaintext && !rs.opts.InsecurePlaintext && !tlsfiles.LoopbackTarget(svc.Target) {
		return "", nil, tlsfiles.PlaintextDialError(svc.Name, svc.Target,
			"set service_tls or its tls in the configuration (or -service-tls-ca), or allow it with plaintext: true (or -insecure-plaintext)")
	}
	if t == nil {
		return "", nil, nil
	}
	id := fmt.Sprintf("%q %q %q %q", t.CAFile, t.CertFile, t.KeyFile, t.ServerName)
	creds := credentials.NewTLS(tlsfiles.ForTarget(t.Config, svc.Target))
	return id, []caller.Option{caller.WithGRPCDialOptions(grpc.WithTransportCredentials(creds))}, nil
}
