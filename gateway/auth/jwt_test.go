package auth_test

import (
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

func TestAuthenticateJWT(t *testing.T) {
	t.Parallel()
	a, k := newAuthenticator(t)
	now := time.Now()
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, k.secret, c) }
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, k.rsa, c) }
	es := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodES256, k.ec, c) }
	hsClaims := func(kv ...any) jwt.MapClaims { return claims(issHS, append([]any{"aud", "api"}, kv...)...) }

	const (
		msgAlgorithm = "token signed with an algorithm this issuer does not use"
		msgSignature = "invalid token signature"
		msgMalformed = "malformed token"
	)
	cases := []struct {
		name      string
		token     string
		wantSub   string
		wantRoles []string
		wantCode  status.Code // "" for success
		wantMsg   string
	}{
		// Good tokens and their roles.
		{name: "HS256", token: hs(hsClaims("roles", []string{"admin", "ops"})), wantSub: "alice", wantRoles: []string{"admin", "ops"}},
		{name: "HS256 one of several audiences", token: hs(claims(issHS, "aud", []string{"other", "admin-api"})), wantSub: "alice"},
		{name: "RS256 roles as a string", token: rs(claims(issRS, "roles", "read  write")), wantSub: "alice", wantRoles: []string{"read", "write"}},
		{name: "ES256 roles in the issuer's claim", token: es(claims(issES, "groups", []string{"g1"}, "roles", []string{"ignored"})), wantSub: "alice", wantRoles: []string{"g1"}},
		{name: "ES256 first of several keys", token: sign(t, jwt.SigningMethodES256, k.ecOther, claims(issES)), wantSub: "alice"},
		{name: "roles absent", token: rs(claims(issRS)), wantSub: "alice"},
		{name: "roles a number", token: rs(claims(issRS, "roles", 7)), wantSub: "alice"},
		{name: "roles an object", token: rs(claims(issRS, "roles", map[string]any{"admin": true})), wantSub: "alice"},
		{name: "roles an array with a number", token: rs(claims(issRS, "roles", []any{"admin", 1})), wantSub: "alice"},
		{name: "expired within leeway", token: rs(claims(issRS, "exp", now.Add(-10*time.Second).Unix())), wantSub: "alice"},
		{name: "not before within leeway", token: rs(claims(issRS, "nbf", now.Add(10*time.Second).Unix())), wantSub: "alice"},
		{name: "mixed issuer HS256", token: sign(t, jwt.SigningMethodHS256, k.mixedSecret, claims(issMixed)), wantSub: "alice"},
		{name: "mixed issuer RS256", token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(issMixed)), wantSub: "alice"},

		// Time.
		{name: "expired", token: rs(claims(issRS, "exp", now.Add(-time.Hour).Unix())), wantCode: socket.CodeUnauthenticated, wantMsg: "token expired"},
		{name: "not yet valid", token: es(claims(issES, "nbf", now.Add(time.Hour).Unix())), wantCode: socket.CodeUnauthenticated, wantMsg: "token not valid yet"},
		{name: "issued in the future", token: hs(hsClaims("iat", now.Add(time.Hour).Unix())), wantCode: socket.CodeUnauthenticated, wantMsg: "token issued in the future"},
		{name: "missing exp", token: hs(hsClaims("exp", nil)), wantCode: socket.CodeUnauthenticated, wantMsg: "token has no expiry (exp)"},
		{name: "exp of the wrong type", token: rs(claims(issRS, "exp", "tomorrow")), wantCode: socket.CodeUnauthenticated, wantMsg: "token has a claim of the wrong type"},

		// Issuer, audience, subject.
		{name: "unknown issuer", token: hs(claims("https://evil.example")), wantCode: socket.CodeUnauthenticated, wantMsg: "unknown token issuer"},
		{name: "no issuer", token: hs(claims(issHS, "iss", nil)), wantCode: socket.CodeUnauthenticated, wantMsg: "token has no issuer (iss)"},
		{name: "issuer not a string", token: hs(claims(issHS, "iss", 3)), wantCode: socket.CodeUnauthenticated, wantMsg: "token has no issuer (iss)"},
		{name: "wrong audience", token: hs(claims(issHS, "aud", "billing-api")), wantCode: socket.CodeUnauthenticated, wantMsg: "token is not meant for this audience"},
		{name: "missing audience", token: hs(claims(issHS)), wantCode: socket.CodeUnauthenticated, wantMsg: "token has no audience (aud)"},
		{name: "missing subject", token: rs(claims(issRS, "sub", nil)), wantCode: socket.CodeUnauthenticated, wantMsg: "token has no subject (sub)"},
		{name: "empty subject", token: rs(claims(issRS, "sub", "")), wantCode: socket.CodeUnauthenticated, wantMsg: "token has no subject (sub)"},
		{name: "subject not a string", token: rs(claims(issRS, "sub", 42)), wantCode: socket.CodeUnauthenticated, wantMsg: "token has a claim of the wrong type"},

		// Algorithms.
		{name: "alg none", token: sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hsClaims()), wantCode: socket.CodeUnauthenticated, wantMsg: msgAlgorithm},
		{name: "algorithm confusion: HS256 keyed with the RSA public key", token: sign(t, jwt.SigningMethodHS256, k.rsaPEM, claims(issRS)), wantCode: socket.CodeUnauthenticated, wantMsg: msgAlgorithm},
		{name: "algorithm confusion on an issuer with a secret too", token: sign(t, jwt.SigningMethodHS256, k.rsaPEM, claims(issMixed)), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},
		{name: "ES256 to an HS256 issuer", token: sign(t, jwt.SigningMethodES256, k.ec, hsClaims()), wantCode: socket.CodeUnauthenticated, wantMsg: msgAlgorithm},
		{name: "RS384 to an RS256 issuer", token: sign(t, jwt.SigningMethodRS384, k.rsa, claims(issRS)), wantCode: socket.CodeUnauthenticated, wantMsg: msgAlgorithm},
		{name: "unknown algorithm", token: rawToken(`{"alg":"HS999","typ":"JWT"}`, `{"iss":"https://hs.example","sub":"alice"}`, "c2ln"), wantCode: socket.CodeUnauthenticated, wantMsg: "token signed with an unsupported algorithm"},
		{name: "no algorithm", token: rawToken(`{"typ":"JWT"}`, `{"iss":"https://hs.example","sub":"alice"}`, "c2ln"), wantCode: socket.CodeUnauthenticated, wantMsg: "token signed with an unsupported algorithm"},

		// Signatures.
		{name: "tampered RS256 signature", token: tamperSignature(rs(claims(issRS))), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},
		{name: "tampered ES256 signature", token: tamperSignature(es(claims(issES))), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},
		{name: "tampered HS256 signature", token: tamperSignature(hs(hsClaims())), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},
		{name: "tampered payload", token: swapPayload(rs(claims(issRS)), `{"iss":"https://rs.example","sub":"mallory","exp":4102444800}`), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},
		{name: "wrong HMAC secret", token: sign(t, jwt.SigningMethodHS256, []byte("not-the-secret"), hsClaims()), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},
		{name: "unknown ECDSA key", token: sign(t, jwt.SigningMethodES256, k.ecStranger, claims(issES)), wantCode: socket.CodeUnauthenticated, wantMsg: msgSignature},

		// Malformed.
		{name: "not a JWT's shape is an API key", token: "e!J.eyJ9.c2ln", wantCode: socket.CodeUnauthenticated, wantMsg: "unknown API key"},
		{name: "header not JSON", token: rawToken(`{"alg":`, `{}`, "c2ln"), wantCode: socket.CodeUnauthenticated, wantMsg: msgMalformed},
		{name: "payload not JSON", token: rawToken(`{"alg":"HS256"}`, `[1,`, "c2ln"), wantCode: socket.CodeUnauthenticated, wantMsg: msgMalformed},
		{name: "parts not base64", token: "abc.def.ghi", wantCode: socket.CodeUnauthenticated, wantMsg: msgMalformed},
		{name: "signature not base64", token: rawToken(`{"alg":"HS256"}`, `{"iss":"https://hs.example"}`, "a"), wantCode: socket.CodeUnauthenticated, wantMsg: msgMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, present, err := a.Authenticate("Bearer "+tc.token, "")
			if !present {
				t.Error("present = false, want true")
			}
			checkErr(t, err, tc.wantCode, tc.wantMsg)
			if err != nil {
				return
			}
			if p.Subject != tc.wantSub {
				t.Errorf("subject = %q, want %q", p.Subject, tc.wantSub)
			}
			if !slices.Equal(p.Roles, tc.wantRoles) {
				t.Errorf("roles = %q, want %q", p.Roles, tc.wantRoles)
			}
		})
	}
}
