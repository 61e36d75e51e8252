package main

import (
	"crypto/tls"
	"flag"
	"os"

	"github.com/streamgate/streamgate/gateway"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/internal/tlsfiles"
)

// tlsFlags are a command's TLS flags: file names, never secrets.
type tlsFlags struct {
	cert, key, clientCA               *string // the command's listeners
	ca, callCert, callKey, serverName *string // its links to services
	insecure                          *bool
}

// addTLSFlags declares the listener flags (-tls-*), -insecure-plaintext
// and, when links, the flags of the links to services (-service-tls-*).
func addTLSFlags(fs *flag.FlagSet, links bool) *tlsFlags {
	f := &tlsFlags{
		cert:     fs.String("tls-cert", "", "certificate `FILE` (PEM): serve TLS"),
		key:      fs.String("tls-key", "", "private key `FILE` (PEM) of -tls-cert"),
		clientCA: fs.String("tls-client-ca", "", "CA `FILE` (PEM): require client certificates it signed (mutual TLS)"),
		insecure: fs.Bool("insecure-plaintext", false, "allow plaintext listeners and links on addresses other than loopback"),
	}
	none := ""
	f.ca, f.callCert, f.callKey, f.serverName = &none, &none, &none, &none
	if links {
		f.ca = fs.String("service-tls-ca", "", "CA `FILE` (PEM) that verifies the services called: reach them over TLS")
		f.callCert = fs.String("service-tls-cert", "", "client certificate `FILE` (PEM) presented to the services called (mutual TLS)")
		f.callKey = fs.String("service-tls-key", "", "private key `FILE` (PEM) of -service-tls-cert")
		f.serverName = fs.String("service-tls-server-name", "", "`NAME` the services' certificates must carry (default: the target's host)")
	}
	return f
}

// listen is the listeners' TLS; nil for plaintext.
func (f *tlsFlags) listen() (*tls.Config, error) {
	return tlsfiles.Server{CertFile: *f.cert, KeyFile: *f.key, ClientCAFile: *f.clientCA}.Config()
}

// links is the TLS of the links to services; nil for plaintext.
func (f *tlsFlags) links() (*config.LinkTLS, error) {
	c := tlsfiles.Client{CAFile: *f.ca, CertFile: *f.callCert, KeyFile: *f.callKey, ServerName: *f.serverName}
	cfg, err := c.Config()
	if cfg == nil || err != nil {
		return nil, err
	}
	return &config.LinkTLS{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName, Config: cfg}, nil
}

// linkConfig is a link's tls.Config; nil for plaintext.
func linkConfig(l *config.LinkTLS) *tls.Config {
	if l == nil {
		return nil
	}
	return l.Config
}

// defaultStackConfig is where the stack's configuration is looked for
// first: in a checkout's root.
const defaultStackConfig = "gateway/stack.yaml"

// stackConfig is the stack's configuration: the -config file; without
// one, gateway/stack.yaml when the working directory has it (a checkout,
// where editing it and SIGHUP apply), else the copy built into the binary
// (data not nil).
func stackConfig(flagValue string) (path string, data []byte) {
	if flagValue != "" {
		return flagValue, nil
	}
	if _, err := os.Stat(defaultStackConfig); err == nil {
		return defaultStackConfig, nil
	}
	return "stack.yaml (built in)", gateway.StackConfig()
}
