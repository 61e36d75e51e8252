package config

import (
	"path/filepath"

	"github.com/streamgate/streamgate/internal/tlsfiles"
)

// files reads the files a configuration names (certificates, keys),
// relative to its directory unless absolute, when it loads, so that their
// problems are reported with the configuration's.
type files struct {
	*problems
	dir string // the configuration file's directory
}

// listenTLS checks the listeners' TLS files.
func (f files) listenTLS(y *yamlListenTLS) ListenTLS {
	t := ListenTLS{CertFile: f.fileName(y.CertFile), KeyFile: f.fileName(y.KeyFile), ClientCAFile: f.fileName(y.ClientCAFile)}
	if _, err := (tlsfiles.Server{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile}).Config(); err != nil {
		f.addf(y.At, "%v", err)
	}
	return t
}

// linkTLS is a link's TLS: own's fields over def's; nil when neither sets
// any. The files are loaded here, so that their problems are reported
// with the configuration's.
func (f files) linkTLS(def, own *yamlLinkTLS) *LinkTLS {
	pick := func(a, b val[string]) string {
		if b.Set {
			return f.fileName(b)
		}
		return f.fileName(a)
	}
	t := &LinkTLS{
		CAFile: pick(def.CAFile, own.CAFile), CertFile: pick(def.CertFile, own.CertFile), KeyFile: pick(def.KeyFile, own.KeyFile),
		ServerName: def.ServerName.V,
	}
	if own.ServerName.Set {
		t.ServerName = own.ServerName.V
	}
	c := tlsfiles.Client{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
	if !c.Enabled() {
		return nil
	}
	cfg, err := c.Config()
	if err != nil {
		where := def.At
		if own.At.found() {
			where = own.At
		}
		f.addf(where, "%v", err)
		return nil
	}
	t.Config = cfg
	return t
}

// fileName is a file name as written, relative to the configuration file's
// directory unless absolute; "" when unset.
func (f files) fileName(v val[string]) string {
	if !v.Set || !v.OK || v.V == "" || filepath.IsAbs(v.V) {
		return v.V
	}
	return filepath.Join(f.dir, v.V)
}
