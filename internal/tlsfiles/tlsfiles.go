// Package tlsfiles builds crypto/tls configurations from PEM files named in
// flags and configuration files, and decides when plaintext is allowed.
//
//	srv, err := tlsfiles.Server{CertFile: "tls.crt", KeyFile: "tls.key", ClientCAFile: "ca.crt"}.Config()
//	cli, err := tlsfiles.Client{CAFile: "ca.crt", CertFile: "client.crt", KeyFile: "client.key"}.Config()
//	if !tlsfiles.LoopbackAddr(addr) && srv == nil && !insecure { return tlsfiles.PlaintextListen(addr, hint) }
//
// Certificates (not CAs) are read again when their files change, at the
// next handshake, so a rotated certificate takes effect without a restart;
// a pair that does not load (a key written after its certificate) keeps
// the previous one until it does.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// Server is a listener's TLS: its certificate and key, and for mutual TLS
// the CA whose certificates clients must present.
type Server struct {
	CertFile, KeyFile string
	// ClientCAFile, when set, requires and verifies client certificates
	// signed by these CAs (PEM, one or more).
	ClientCAFile string
}

// Enabled reports whether any file is named.
func (s Server) Enabled() bool {
	return s.CertFile != "" || s.KeyFile != "" || s.ClientCAFile != ""
}

// Config loads the files and returns the listener's configuration, or
// nil when no file is named. The certificate is re-read when its files
// change.
func (s Server) Config() (*tls.Config, error) {
	if !s.Enabled() {
		return nil, nil
	}
	if s.CertFile == "" || s.KeyFile == "" {
		return nil, errors.New("TLS needs both a certificate and a key file")
	}
	pair, err := newKeyPair(s.CertFile, s.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return pair.get(), nil
		},
	}
	if s.ClientCAFile != "" {
		pool, err := loadPool(s.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client is a link's TLS: the CAs that verify the server, the client
// certificate for mutual TLS, and the name the server's certificate must
// carry.
type Client struct {
	// CAFile holds the CAs (PEM) that verify the server; empty: the
	// system's roots.
	CAFile string
	// CertFile and KeyFile, when set, are presented to the server.
	CertFile, KeyFile string
	// ServerName overrides the name checked against the server's
	// certificate (default: the host dialled).
	ServerName string
}

// Enabled reports whether anything is set.
func (c Client) Enabled() bool { return c != Client{} }

// Config loads the files and returns the link's configuration, or nil
// when nothing is set. The client certificate is re-read when its files
// change.
func (c Client) Config() (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		pair, err := newKeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return pair.get(), nil
		}
	case c.CertFile != "" || c.KeyFile != "":
		return nil, errors.New("a client certificate needs both a certificate and a key file")
	}
	return cfg, nil
}

// loadPool reads a PEM bundle of CA certificates.
func loadPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// keyPair is a certificate and key read from files, read again when
// either file's size or modification time changes.
type keyPair struct {
	certFile, keyFile string

	mu    sync.Mutex // guards cert, stamp
	cert  *tls.Certificate
	stamp [2]fileStamp
}

// fileStamp is what tells that a file changed.
type fileStamp struct {
	size, mod int64 // bytes, modification time in nanoseconds
}

func newKeyPair(certFile, keyFile string) (*keyPair, error) {
	p := &keyPair{certFile: certFile, keyFile: keyFile}
	if err := p.load(); err != nil {
		return nil, err
	}
	return p, nil
}

// load reads the pair. Callers hold p.mu or own p.
func (p *keyPair) load() error {
	stamp := [2]fileStamp{stampOf(p.certFile), stampOf(p.keyFile)}
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return err
	}
	p.cert, p.stamp = &cert, stamp
	return nil
}

// get returns the pair, first reading it again if its files changed; a
// pair that does not load keeps the previous one.
func (p *keyPair) get() *tls.Certificate {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stamp != [2]fileStamp{stampOf(p.certFile), stampOf(p.keyFile)} {
		_ = p.load()
	}
	return p.cert
}

func stampOf(file string) fileStamp {
	fi, err := os.Stat(file)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.Size(), fi.ModTime().UnixNano()}
}
