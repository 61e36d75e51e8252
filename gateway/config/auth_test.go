package config_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
)

// writePEM writes a public key as a "PUBLIC KEY" PEM file.
func writePEM(t *testing.T, path string, keys ...crypto.PublicKey) {
	t.Helper()
	var data []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPublicKeys(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edKey, _, _ := ed25519.GenerateKey(rand.Reader)

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "keys", "both.pem"), &rsaKey.PublicKey, &p256.PublicKey)
	writePEM(t, filepath.Join(dir, "p256.pem"), &p256.PublicKey)
	writePEM(t, filepath.Join(dir, "small.pem"), &smallRSA.PublicKey)
	writePEM(t, filepath.Join(dir, "p384.pem"), &p384.PublicKey)
	writePEM(t, filepath.Join(dir, "ed25519.pem"), edKey)
	private := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(smallRSA)})
	if err := os.WriteFile(filepath.Join(dir, "private.pem"), private, 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("not DER")})
	if err := os.WriteFile(filepath.Join(dir, "garbage.pem"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "p256.pem")

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "gateway.yaml")
		yaml := "auth:\n  jwt:\n    - issuer: id\n      audience: [a, b]\n      public_key_files: [keys/both.pem, " + abs + "]\n      roles_claim: groups\n      leeway: 0s\n"
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load:\n%v", err)
		}
		j := cfg.Auth.JWT[0]
		if len(j.PublicKeys) != 3 || j.HS256Secret != nil || j.RolesClaim != "groups" || j.Leeway != 0 ||
			strings.Join(j.Audience, ",") != "a,b" || j.Line != 3 {
			t.Fatalf("issuer = %+v", j)
		}
		if k, ok := j.PublicKeys[0].(*rsa.PublicKey); !ok || !k.Equal(&rsaKey.PublicKey) {
			t.Errorf("key 0 = %T", j.PublicKeys[0])
		}
		for _, k := range j.PublicKeys[1:] {
			if k, ok := k.(*ecdsa.PublicKey); !ok || !k.Equal(&p256.PublicKey) {
				t.Errorf("key = %T", k)
			}
		}
	})

	tests := []struct {
		file string
		want string
	}{
		{"small.pem", "small.pem: RSA key of 1024 bits: want at least 2048"},
		{"p384.pem", "p384.pem: ECDSA key on P-384: want P-256"},
		{"ed25519.pem", "ed25519.pem: ed25519.PublicKey: want an RSA or P-256 ECDSA key"},
		{"private.pem", `private.pem: PEM block "RSA PRIVATE KEY": want "PUBLIC KEY"`},
		{"garbage.pem", "garbage.pem: PUBLIC KEY block is not a PKIX key"},
		{"keys", "is not a regular file"},
		{"none.pem", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			yaml := "auth:\n  jwt:\n    - issuer: id\n      public_key_files:\n        - " + tt.file + "\n"
			_, err := config.Parse(filepath.Join(dir, "gateway.yaml"), []byte(yaml), nil)
			prefix := filepath.Join(dir, "gateway.yaml") + ":5: auth.jwt[0].public_key_files[0]: "
			if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error:\n%v\nwant %s…%s", err, prefix, tt.want)
			}
		})
	}
}
