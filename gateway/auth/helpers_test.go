package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// The issuers and API keys of testConfig.
const (
	issHS    = "https://hs.example"    // HS256, audiences "api" and "admin-api"
	issRS    = "https://rs.example"    // RS256
	issES    = "https://es.example"    // ES256 with two keys, roles in "groups"
	issMixed = "https://mixed.example" // HS256 and RS256

	ciSecret      = "ci-secret"      // key "ci", subject "ci", roles deploy
	billingSecret = "billing-secret" // key "billing", subject "svc:billing", roles admin, billing
)

// testKeys are real keys, generated once per test binary: RSA 2048 is slow.
type testKeys struct {
	rsa         *rsa.PrivateKey
	rsaPEM      []byte // the RSA public key, PEM-encoded
	ec, ecOther *ecdsa.PrivateKey
	ecStranger  *ecdsa.PrivateKey // no issuer knows it
	secret      []byte
	mixedSecret []byte
}

var generateKeys = sync.OnceValues(func() (*testKeys, error) {
	k := &testKeys{secret: []byte("hs256-test-secret-of-32-bytes!!!"), mixedSecret: []byte("another-test-secret-of-32-bytes!")}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		return nil, err
	}
	k.rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	for _, p := range []**ecdsa.PrivateKey{&k.ec, &k.ecOther, &k.ecStranger} {
		if *p, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	return k, nil
})

func keys(t testing.TB) *testKeys {
	t.Helper()
	k, err := generateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testConfig(k *testKeys) config.Auth {
	return config.Auth{
		APIKeys: []config.APIKey{
			{Name: "ci", Hash: keyring.Hash(ciSecret), Roles: []string{"deploy"}},
			{Name: "billing", Hash: keyring.Hash(billingSecret), Subject: "svc:billing", Roles: []string{"admin", "billing"}},
		},
		JWT: []config.JWTIssuer{
			{Issuer: issHS, Audience: []string{"api", "admin-api"}, HS256Secret: k.secret, RolesClaim: "roles", Leeway: 30 * time.Second},
			{Issuer: issRS, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey}, Leeway: 30 * time.Second},
			{Issuer: issES, PublicKeys: []crypto.PublicKey{&k.ecOther.PublicKey, &k.ec.PublicKey}, RolesClaim: "groups", Leeway: 30 * time.Second},
			{Issuer: issMixed, HS256Secret: k.mixedSecret, PublicKeys: []crypto.PublicKey{&k.rsa.PublicKey}, Leeway: 30 * time.Second},
		},
	}
}

func newAuthenticator(t testing.TB) (*auth.Authenticator, *testKeys) {
	t.Helper()
	k := keys(t)
	a, err := auth.New(testConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	return a, k
}

// claims returns valid claims for iss (subject alice, expiring in an hour)
// changed by kv: pairs of a claim name and its value; a nil value removes
// the claim.
func claims(iss string, kv ...any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"iss": iss, "sub": "alice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for i := 0; i+1 < len(kv); i += 2 {
		name := kv[i].(string)
		if kv[i+1] == nil {
			delete(c, name)
			continue
		}
		c[name] = kv[i+1]
	}
	return c
}

// sign returns a token with the claims signed by key with method.
func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tamperSignature changes one character in the middle of the signature,
// where every bit counts.
func tamperSignature(token string) string {
	i := strings.LastIndexByte(token, '.')
	sig := []byte(token[i+1:])
	m := len(sig) / 2
	if sig[m] == 'A' {
		sig[m] = 'B'
	} else {
		sig[m] = 'A'
	}
	return token[:i+1] + string(sig)
}

// swapPayload replaces the token's payload, keeping its header and
// signature.
func swapPayload(token, payload string) string {
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(payload))
	return strings.Join(parts, ".")
}

// rawToken builds a token from a JSON header and payload and a signature.
func rawToken(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

// checkErr fails t unless err has the code and, when msg is not empty,
// the message.
func checkErr(t *testing.T, err error, code status.Code, msg string) {
	t.Helper()
	if got := status.CodeOf(err); got != code {
		t.Fatalf("code = %q, want %q (err: %v)", got, code, err)
	}
	if err == nil || msg == "" {
		return
	}
	var se *status.Error
	if !errors.As(err, &se) {
		t.Fatalf("err = %T %v, want a *status.Error", err, err)
	}
	if se.Message != msg {
		t.Fatalf("message = %q, want %q", se.Message, msg)
	}
}
