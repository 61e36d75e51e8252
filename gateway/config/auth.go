package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/streamgate/streamgate/services/socket/keyring"
)

// minRSABits is the smallest RSA key accepted for RS256.
const minRSABits = 2048

// auth checks the edge's API keys and token issuers.
func (l *loader) auth(y *yamlAuth) Auth {
	var a Auth
	byName, byHash := map[string]int{}, map[string]int{}
	for _, yk := range y.APIKeys {
		k, ok := l.apiKey(yk)
		switch {
		case !ok:
		case byName[k.Name] != 0:
			l.addf(yk.At, "API key name %q is used twice (first at line %d)", k.Name, byName[k.Name])
		case byHash[k.Hash] != 0:
			l.addf(yk.At, "API key %q is the same key as the one at line %d", k.Name, byHash[k.Hash])
		default:
			byName[k.Name], byHash[k.Hash] = k.Line, k.Line
			a.APIKeys = append(a.APIKeys, k)
		}
	}
	issuers := map[string]int{}
	for _, yj := range y.JWT {
		j, ok := l.jwt(yj)
		if !ok {
			continue
		}
		if first := issuers[j.Issuer]; first != 0 {
			l.addf(yj.At, "issuer %q is listed twice (first at line %d); give one entry all its keys", j.Issuer, first)
			continue
		}
		issuers[j.Issuer] = j.Line
		a.JWT = append(a.JWT, j)
	}
	return a
}

// apiKey checks one accepted API key; ok is false when it has problems.
func (l *loader) apiKey(y yamlAPIKey) (k APIKey, ok bool) {
	if !y.At.found() {
		return k, false // not a mapping: reported
	}
	k = APIKey{Name: y.Name.V, Subject: y.Subject.or(y.Name.V), Roles: y.Roles.V, Line: y.At.line()}
	if !y.Name.Set {
		l.addf(y.At, "name is required")
	}
	switch {
	case y.Hash.Set && y.SecretEnv.Set:
		l.addf(y.At, "set hash or secret_env, not both")
	case y.Hash.Set:
		k.Hash = l.keyHash(y.Hash)
	case y.SecretEnv.Set:
		if secret, ok := l.envVar(y.SecretEnv); ok {
			k.Hash = keyring.Hash(secret)
		}
	default:
		l.addf(y.At, "hash or secret_env is required")
	}
	return k, l.clean(y.At)
}

// keyHash checks a "sha256:HEX" key hash, lower-casing the digits.
func (l *loader) keyHash(v val[text]) string {
	if !v.OK {
		return ""
	}
	digits, found := strings.CutPrefix(string(v.V), "sha256:")
	if b, err := hex.DecodeString(digits); !found || err != nil || len(b) != 32 {
		l.addf(v.at, `expected "sha256:" and 64 hex digits (keyring.Hash's form)`)
		return ""
	}
	return "sha256:" + strings.ToLower(digits)
}

// envVar returns the value of the environment variable v names; a
// variable that is unset or empty is reported by name.
func (l *loader) envVar(v val[string]) (string, bool) {
	if !v.OK {
		return "", false
	}
	s := l.env(v.V)
	if s == "" {
		l.addf(v.at, "environment variable %s is unset or empty", v.V)
		return "", false
	}
	return s, true
}

// jwt checks one accepted token issuer; ok is false when it has problems.
func (l *loader) jwt(y yamlJWT) (j JWTIssuer, ok bool) {
	if !y.At.found() {
		return j, false // not a mapping: reported
	}
	j = JWTIssuer{
		Issuer: y.Issuer.V, Audience: y.Audience.V,
		RolesClaim: y.RolesClaim.or("roles"), Leeway: y.Leeway.or(30 * time.Second),
		Line: y.At.line(),
	}
	if !y.Issuer.Set {
		l.addf(y.At, "issuer is required")
	}
	if y.HS256SecretEnv.Set {
		if secret, ok := l.envVar(y.HS256SecretEnv); ok {
			j.HS256Secret = []byte(secret)
		}
	}
	for _, f := range y.PublicKeyFiles.V {
		j.PublicKeys = append(j.PublicKeys, l.files.publicKeys(f)...)
	}
	if !y.HS256SecretEnv.Set && !y.PublicKeyFiles.Set {
		l.addf(y.At, "hs256_secret_env or public_key_files is required")
	}
	return j, l.clean(y.At)
}

// publicKeys reads a PEM file of one or more "PUBLIC KEY" blocks, relative
// to the configuration's directory.
func (f files) publicKeys(v val[string]) []crypto.PublicKey {
	if !v.OK {
		return nil
	}
	file := v.V
	if !filepath.IsAbs(file) {
		file = filepath.Join(f.dir, file)
	}
	data, err := readKeyFile(file)
	if err != nil {
		f.addf(v.at, "%v", err)
		return nil
	}
	var keys []crypto.PublicKey
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		key, err := publicKey(block)
		if err != nil {
			f.addf(v.at, "%s: %v", v.V, err)
			return nil
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		f.addf(v.at, "%s: no PEM block", v.V)
	}
	return keys
}

// maxKeyFile bounds the size of a public key file.
const maxKeyFile = 1 << 20

// readKeyFile reads a public key file, refusing anything but a regular
// file of at most maxKeyFile bytes (a device or a pipe could block the
// load forever).
func readKeyFile(name string) ([]byte, error) {
	// Stat before opening: opening a named pipe blocks until a writer comes.
	if st, err := os.Stat(name); err != nil {
		return nil, err
	} else if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err == nil && len(data) > maxKeyFile {
		err = fmt.Errorf("%s is larger than %d bytes", name, maxKeyFile)
	}
	return data, err
}

// publicKey parses one PEM block: a PKIX RSA key of at least minRSABits,
// or a P-256 ECDSA key.
func publicKey(block *pem.Block) (crypto.PublicKey, error) {
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block %q: want \"PUBLIC KEY\"", block.Type)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PUBLIC KEY block is not a PKIX key: %w", err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits: want at least %d", k.N.BitLen(), minRSABits)
		}
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA key on %s: want P-256", k.Curve.Params().Name)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%T: want an RSA or P-256 ECDSA key", key)
}
