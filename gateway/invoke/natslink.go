package invoke

import (
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/gateway/natsconns"
)

// natsLink checks the link to a service on NATS: a plaintext nats:// URL
// that leaves the machine is refused as a plaintext stream target is.
func (rs *resources) natsLink(cfg *config.Config, svc *config.Service) error {
	return natsconns.CheckPlaintext(svc.Name, svc.NATSURL, svc.Plaintext || cfg.Plaintext || rs.opts.InsecurePlaintext)
}
