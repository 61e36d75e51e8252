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

	"gopkg.in/yaml.v3"

	"github.com/streamgate/streamgate/services/socket"
)

// minRSABits is the smallest RSA key accepted for RS256.
const minRSABits = 2048

// auth reads the edge's API keys and token issuers.
func (l *loader) auth(n *yaml.Node, path string) Auth {
	var a Auth
	f := l.fields(n, path, "api_keys", "jwt")
	byName, byHash := map[string]int{}, map[string]int{}
	l.items(f["api_keys"], join(path, "api_keys"), func(_ int, v *yaml.Node, p string) {
		k, ok := l.apiKey(v, p)
		if !ok {
			return
		}
		switch {
		case byName[k.Name] != 0:
			l.addf(k.Line, p, "API key name %q is used twice (first at line %d)", k.Name, byName[k.Name])
		case byHash[k.Hash] != 0:
			l.addf(k.Line, p, "API key %q is the same key as the one at line %d", k.Name, byHash[k.Hash])
		default:
			byName[k.Name], byHash[k.Hash] = k.Line, k.Line
			a.APIKeys = append(a.APIKeys, k)
		}
	})
	issuers := map[string]int{}
	l.items(f["jwt"], join(path, "jwt"), func(_ int, v *yaml.Node, p string) {
		j, ok := l.jwt(v, p)
		if !ok {
			return
		}
		if first := issuers[j.Issuer]; first != 0 {
			l.addf(j.Line, p, "issuer %q is listed twice (first at line %d); give one entry all its keys", j.Issuer, first)
			return
		}
		issuers[j.Issuer] = j.Line
		a.JWT = append(a.JWT, j)
	})
	return a
}

// apiKey reads one accepted API key.
func (l *loader) apiKey(n *yaml.Node, path string) (APIKey, bool) {
	n = deref(n)
	before := len(l.list)
	f := l.fields(n, path, "name", "hash", "secret_env", "subject", "roles")
	if f == nil {
		return APIKey{}, false
	}
	k := APIKey{Line: n.Line}
	if v := f["name"]; v != nil {
		k.Name, _ = l.name(v, join(path, "name"))
	} else {
		l.addf(n.Line, path, "name is required")
	}
	switch hash, env := f["hash"], f["secret_env"]; {
	case hash != nil && env != nil:
		l.addf(n.Line, path, "set hash or secret_env, not both")
	case hash != nil:
		k.Hash, _ = l.keyHash(hash, join(path, "hash"))
	case env != nil:
		if secret, ok := l.envVar(env, join(path, "secret_env")); ok {
			k.Hash = socket.HashKey(secret)
		}
	default:
		l.addf(n.Line, path, "hash or secret_env is required")
	}
	k.Subject = k.Name
	if v := f["subject"]; v != nil {
		k.Subject, _ = l.name(v, join(path, "subject"))
	}
	if v := f["roles"]; v != nil {
		k.Roles = l.names(v, join(path, "roles"))
	}
	return k, len(l.list) == before
}

// keyHash reads a "sha256:HEX" key hash, lower-casing the digits.
func (l *loader) keyHash(n *yaml.Node, path string) (string, bool) {
	s, ok := l.str(n, path)
	if !ok {
		return "", false
	}
	digits, found := strings.CutPrefix(s, "sha256:")
	if b, err := hex.DecodeString(digits); !found || err != nil || len(b) != 32 {
		l.addf(deref(n).Line, path, `expected "sha256:" and 64 hex digits (socket.HashKey's form)`)
		return "", false
	}
	return "sha256:" + strings.ToLower(digits), true
}

// envVar reads the name of an environment variable and returns its value;
// a variable that is unset or empty is reported by name.
func (l *loader) envVar(n *yaml.Node, path string) (string, bool) {
	name, ok := l.name(n, path)
	if !ok {
		return "", false
	}
	v := l.env(name)
	if v == "" {
		l.addf(deref(n).Line, path, "environment variable %s is unset or empty", name)
		return "", false
	}
	return v, true
}

// jwt reads one accepted token issuer.
func (l *loader) jwt(n *yaml.Node, path string) (JWTIssuer, bool) {
	n = deref(n)
	before := len(l.list)
	f := l.fields(n, path, "issuer", "audience", "hs256_secret_env", "public_key_files", "roles_claim", "leeway")
	if f == nil {
		return JWTIssuer{}, false
	}
	j := JWTIssuer{RolesClaim: "roles", Leeway: 30 * time.Second, Line: n.Line}
	if v := f["issuer"]; v != nil {
		j.Issuer, _ = l.name(v, join(path, "issuer"))
	} else {
		l.addf(n.Line, path, "issuer is required")
	}
	if v := f["audience"]; v != nil {
		j.Audience = l.nameOrNames(v, join(path, "audience"))
	}
	if v := f["hs256_secret_env"]; v != nil {
		if secret, ok := l.envVar(v, join(path, "hs256_secret_env")); ok {
			j.HS256Secret = []byte(secret)
		}
	}
	if v := f["public_key_files"]; v != nil {
		l.items(v, join(path, "public_key_files"), func(_ int, v *yaml.Node, p string) {
			j.PublicKeys = append(j.PublicKeys, l.publicKeys(v, p)...)
		})
	}
	if f["hs256_secret_env"] == nil && f["public_key_files"] == nil {
		l.addf(n.Line, path, "hs256_secret_env or public_key_files is required")
	}
	if v := f["roles_claim"]; v != nil {
		j.RolesClaim, _ = l.name(v, join(path, "roles_claim"))
	}
	if v := f["leeway"]; v != nil {
		j.Leeway, _ = l.duration(v, join(path, "leeway"), false)
	}
	return j, len(l.list) == before
}

// publicKeys reads a PEM file of one or more "PUBLIC KEY" blocks, relative
// to the configuration's directory.
func (l *loader) publicKeys(n *yaml.Node, path string) []crypto.PublicKey {
	name, ok := l.name(n, path)
	if !ok {
		return nil
	}
	line := deref(n).Line
	file := name
	if !filepath.IsAbs(file) {
		file = filepath.Join(l.dir, file)
	}
	data, err := readKeyFile(file)
	if err != nil {
		l.addf(line, path, "%v", err)
		return nil
	}
	var keys []crypto.PublicKey
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		key, err := publicKey(block)
		if err != nil {
			l.addf(line, path, "%s: %v", name, err)
			return nil
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		l.addf(line, path, "%s: no PEM block", name)
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
