// Package auth checks the credentials callers present at the gateway's edge
// (API keys and JWTs) and a route's access rule against the caller.
//
//	a, err := auth.New(cfg.Auth)
//	p, present, err := a.Authenticate(r.Header.Get("Authorization"), r.Header.Get("X-API-Key"))
//	if err == nil {
//		err = auth.Allow(route.Access, p, present)
//	}
//	// err is a *status.Error: UNAUTHENTICATED (401) or PERMISSION_DENIED (403)
//
// "Authorization: Bearer X" carries a JWT when X has a JWT's shape (three
// base64url parts separated by dots) and an API key otherwise;
// "X-API-Key: K" always carries an API key. Tokens are verified against
// the issuer their iss claim names, with only the algorithms that issuer
// has keys for.
package auth

import (
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// Authenticator checks the credentials a caller presents at the edge. It
// is safe for concurrent use; the keys and issuers it accepts do not
// change after New (a new configuration makes a new Authenticator).
type Authenticator struct {
	keys       *keyring.Keyring
	verified   *keyCache          // API keys the keyring accepted before, by the presented bytes
	subjects   map[string]string  // API key name → the principal's subject
	issuers    map[string]*issuer // by iss claim
	unverified *jwt.Parser        // reads a token's iss and alg before an issuer verifies it
}

// New returns an Authenticator accepting the API keys and token issuers of
// cfg. It refuses a configuration it cannot enforce: a key without a valid
// hash, an issuer without keys, a public key that is neither RSA nor P-256.
func New(cfg config.Auth) (*Authenticator, error) {
	keys, subjects, err := newKeys(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	issuers, err := newIssuers(cfg.JWT)
	if err != nil {
		return nil, err
	}
	return &Authenticator{keys: keys, verified: newKeyCache(), subjects: subjects, issuers: issuers, unverified: jwt.NewParser()}, nil
}

// Authenticate checks the credentials in an Authorization header value
// ("Bearer X") and an X-API-Key header value. present is false when
// neither carries credentials; the route decides whether anonymous callers
// are fine. A bad credential is an UNAUTHENTICATED *status.Error with a
// message safe to show the caller, and present is true.
func (a *Authenticator) Authenticate(authorization, apiKey string) (p socket.Principal, present bool, err error) {
	bearer, err := bearerCredential(authorization)
	if err != nil {
		return socket.Principal{}, true, err
	}
	switch {
	case bearer == "" && apiKey == "":
		return socket.Principal{}, false, nil
	case bearer != "" && apiKey != "" && bearer != apiKey:
		return socket.Principal{}, true, unauthenticated("the Authorization and X-API-Key headers carry different credentials")
	case apiKey != "":
		p, err = a.verifyKey(apiKey)
	case looksLikeJWT(bearer):
		p, err = a.verifyToken(bearer)
	default:
		p, err = a.verifyKey(bearer)
	}
	if err != nil {
		return socket.Principal{}, true, err
	}
	return p, true, nil
}

// Allow checks a caller against a route's access rule: without
// credentials only anonymous routes are open (UNAUTHENTICATED otherwise);
// a route with roles needs the caller to have one of them
// (PERMISSION_DENIED otherwise). Credentials, when present, are held to
// the roles even on an anonymous route.
func Allow(access config.Access, p socket.Principal, present bool) error {
	if !present {
		if access.Anonymous {
			return nil
		}
		return unauthenticated("credentials required: send an API key or a bearer token")
	}
	if len(access.Roles) == 0 {
		return nil
	}
	for _, role := range access.Roles {
		if p.HasRole(role) {
			return nil
		}
	}
	return &status.Error{Code: socket.CodePermissionDenied, Message: "the caller lacks a role this route requires"}
}

// bearerCredential returns the credential of an Authorization header
// value; "" when the value is empty.
func bearerCredential(authorization string) (string, error) {
	authorization = strings.TrimSpace(authorization)
	if authorization == "" {
		return "", nil
	}
	scheme, credential, _ := strings.Cut(authorization, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated("unsupported authorization scheme: send \"Bearer\" and a token or API key")
	}
	credential = strings.TrimSpace(credential)
	if credential == "" {
		return "", unauthenticated("empty bearer credential")
	}
	return credential, nil
}

// looksLikeJWT reports whether s has a JWT's shape: a header, a payload
// and a signature in base64url, separated by dots. The signature may be
// empty (an unsigned token, which verification then refuses).
func looksLikeJWT(s string) bool {
	header, rest, ok := strings.Cut(s, ".")
	if !ok {
		return false
	}
	payload, signature, ok := strings.Cut(rest, ".")
	if !ok || header == "" || payload == "" {
		return false
	}
	return isBase64URL(header) && isBase64URL(payload) && isBase64URL(signature)
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// unauthenticated returns an UNAUTHENTICATED error with a message safe to
// show the caller.
func unauthenticated(msg string) *status.Error {
	return &status.Error{Code: socket.CodeUnauthenticated, Message: msg}
}
