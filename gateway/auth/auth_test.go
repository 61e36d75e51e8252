package auth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/gateway/auth"
	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

func TestAuthenticateHeaders(t *testing.T) {
	t.Parallel()
	a, k := newAuthenticator(t)
	token := sign(t, jwt.SigningMethodRS256, k.rsa, claims(issRS, "roles", []string{"reader"}))
	cases := []struct {
		name          string
		authorization string
		apiKey        string
		wantPresent   bool
		wantSub       string
		wantRoles     []string
		wantCode      status.Code // "" for success
		wantMsg       string
	}{
		{name: "no credentials", wantPresent: false},
		{name: "blank authorization", authorization: "  ", wantPresent: false},
		{name: "API key as bearer", authorization: "Bearer " + ciSecret, wantPresent: true, wantSub: "ci", wantRoles: []string{"deploy"}},
		{name: "lower-case scheme", authorization: "bearer " + ciSecret, wantPresent: true, wantSub: "ci", wantRoles: []string{"deploy"}},
		{name: "API key with its own subject", authorization: "Bearer " + billingSecret, wantPresent: true, wantSub: "svc:billing", wantRoles: []string{"admin", "billing"}},
		{name: "API key via X-API-Key", apiKey: billingSecret, wantPresent: true, wantSub: "svc:billing", wantRoles: []string{"admin", "billing"}},
		{name: "same API key in both headers", authorization: "Bearer " + ciSecret, apiKey: ciSecret, wantPresent: true, wantSub: "ci", wantRoles: []string{"deploy"}},
		{name: "JWT as bearer", authorization: "Bearer " + token, wantPresent: true, wantSub: "alice", wantRoles: []string{"reader"}},
		{name: "unknown API key", authorization: "Bearer nope", wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: "unknown API key"},
		{name: "unknown X-API-Key", apiKey: "nope", wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: "unknown API key"},
		{name: "JWT in X-API-Key is an API key", apiKey: token, wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: "unknown API key"},
		{name: "conflicting credentials", authorization: "Bearer " + ciSecret, apiKey: billingSecret, wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: "the Authorization and X-API-Key headers carry different credentials"},
		{name: "JWT and a different API key", authorization: "Bearer " + token, apiKey: ciSecret, wantPresent: true, wantCode: socket.CodeUnauthenticated},
		{name: "basic scheme", authorization: "Basic Y2k6c2VjcmV0", wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: `unsupported authorization scheme: send "Bearer" and a token or API key`},
		{name: "scheme alone", authorization: "Bearer", wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: "empty bearer credential"},
		{name: "empty bearer", authorization: "Bearer   ", wantPresent: true, wantCode: socket.CodeUnauthenticated, wantMsg: "empty bearer credential"},
		{name: "key without scheme", authorization: ciSecret, wantPresent: true, wantCode: socket.CodeUnauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, present, err := a.Authenticate(tc.authorization, tc.apiKey)
			if present != tc.wantPresent {
				t.Errorf("present = %v, want %v", present, tc.wantPresent)
			}
			checkErr(t, err, tc.wantCode, tc.wantMsg)
			if p.Subject != tc.wantSub || !slices.Equal(p.Roles, tc.wantRoles) {
				t.Errorf("principal = %+v, want subject %q roles %q", p, tc.wantSub, tc.wantRoles)
			}
		})
	}
}

func TestAllow(t *testing.T) {
	t.Parallel()
	admin := socket.Principal{Subject: "alice", Roles: []string{"admin"}}
	reader := socket.Principal{Subject: "bob", Roles: []string{"reader"}}
	var (
		anonymous     = config.Access{Anonymous: true}
		authenticated = config.Access{}
		admins        = config.Access{Roles: []string{"ops", "admin"}}
	)
	cases := []struct {
		name    string
		access  config.Access
		p       socket.Principal
		present bool
		want    status.Code
	}{
		{"anonymous route without credentials", anonymous, socket.Principal{}, false, ""},
		{"anonymous route with credentials", anonymous, reader, true, ""},
		{"authenticated route without credentials", authenticated, socket.Principal{}, false, socket.CodeUnauthenticated},
		{"authenticated route with credentials", authenticated, reader, true, ""},
		{"roles route without credentials", admins, socket.Principal{}, false, socket.CodeUnauthenticated},
		{"roles route with the wrong role", admins, reader, true, socket.CodePermissionDenied},
		{"roles route without roles", admins, socket.Principal{Subject: "carol"}, true, socket.CodePermissionDenied},
		{"roles route with the right role", admins, admin, true, ""},
		{"anonymous roles route with the wrong role", config.Access{Anonymous: true, Roles: []string{"admin"}}, reader, true, socket.CodePermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, auth.Allow(tc.access, tc.p, tc.present), tc.want, "")
		})
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	k := keys(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("s")
	cases := []struct {
		name string
		cfg  config.Auth
		want string
	}{
		{"API key with a bad hash", config.Auth{APIKeys: []config.APIKey{{Name: "a", Hash: "sha256:zz"}}}, `api key "a"`},
		{"API key without a hash", config.Auth{APIKeys: []config.APIKey{{Name: "a"}}}, `api key "a"`},
		{"API key names twice", config.Auth{APIKeys: []config.APIKey{{Name: "a", Hash: keyring.Hash("1")}, {Name: "a", Hash: keyring.Hash("2")}}}, "name already in use"},
		{"issuer without a name", config.Auth{JWT: []config.JWTIssuer{{HS256Secret: secret}}}, "without a name"},
		{"issuer without keys", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i"}}}, "no HS256 secret and no public key"},
		{"issuer listed twice", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i", HS256Secret: secret}, {Issuer: "i", HS256Secret: secret}}}, "listed twice"},
		{"P-384 key", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i", PublicKeys: []crypto.PublicKey{&p384.PublicKey}}}}, "P-256"},
		{"Ed25519 key", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i", PublicKeys: []crypto.PublicKey{edPub}}}}, "unsupported type"},
		{"RSA key by value", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i", PublicKeys: []crypto.PublicKey{k.rsa.PublicKey}}}}, "unsupported type"},
		{"RSA key under 2048 bits", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i", PublicKeys: []crypto.PublicKey{&small.PublicKey}}}}, "at least 2048 bits"},
		{"negative leeway", config.Auth{JWT: []config.JWTIssuer{{Issuer: "i", HS256Secret: secret, Leeway: -time.Second}}}, "negative leeway"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, err := auth.New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, %v; want an error containing %q", a, err, tc.want)
			}
		})
	}
}

func TestNewEmpty(t *testing.T) {
	t.Parallel()
	a, err := auth.New(config.Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if _, present, err := a.Authenticate("", ""); present || err != nil {
		t.Errorf("no credentials: present %v, err %v", present, err)
	}
	_, _, err = a.Authenticate("Bearer some-key", "")
	checkErr(t, err, socket.CodeUnauthenticated, "unknown API key")
	_, _, err = a.Authenticate("Bearer eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln", "")
	checkErr(t, err, socket.CodeUnauthenticated, "unknown token issuer")
}
