package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// defaultRolesClaim is the claim that carries roles when an issuer names none.
const defaultRolesClaim = "roles"

// minRSABytes is the smallest RSA modulus accepted: 2048 bits.
const minRSABytes = 256

// The signing algorithms an issuer may use, each only with a key for it.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// errAlgorithm is what the key function returns for an algorithm the
// issuer has no key for.
var errAlgorithm = errors.New("auth: algorithm not used by this issuer")

// issuer is one accepted token issuer, ready to verify its tokens.
type issuer struct {
	name       string
	secret     []byte                // HS256; nil when the issuer has none
	rsaKeys    []jwt.VerificationKey // RS256: *rsa.PublicKey
	ecdsaKeys  []jwt.VerificationKey // ES256: *ecdsa.PublicKey on P-256
	methods    []string              // the algorithms the keys above allow
	rolesClaim string
	parser     *jwt.Parser
}

// newIssuers returns the issuers of cfg by name.
func newIssuers(cfg []config.JWTIssuer) (map[string]*issuer, error) {
	issuers := make(map[string]*issuer, len(cfg))
	for _, c := range cfg {
		is, err := newIssuer(c)
		if err != nil {
			return nil, err
		}
		if _, dup := issuers[is.name]; dup {
			return nil, fmt.Errorf("auth: jwt issuer %q: listed twice", is.name)
		}
		issuers[is.name] = is
	}
	return issuers, nil
}

func newIssuer(c config.JWTIssuer) (*issuer, error) {
	if c.Issuer == "" {
		return nil, fmt.Errorf("auth: jwt issuer without a name")
	}
	if c.Leeway < 0 {
		return nil, fmt.Errorf("auth: jwt issuer %q: negative leeway %v", c.Issuer, c.Leeway)
	}
	is := &issuer{name: c.Issuer, rolesClaim: c.RolesClaim}
	if is.rolesClaim == "" {
		is.rolesClaim = defaultRolesClaim
	}
	if len(c.HS256Secret) > 0 {
		is.secret = slices.Clone(c.HS256Secret)
		is.methods = append(is.methods, algHS256)
	}
	for i, k := range c.PublicKeys {
		switch k := k.(type) {
		case *rsa.PublicKey:
			if k.Size() < minRSABytes {
				return nil, fmt.Errorf("auth: jwt issuer %q: public key %d: RSA keys must have at least %d bits", c.Issuer, i, minRSABytes*8)
			}
			is.rsaKeys = append(is.rsaKeys, k)
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() {
				return nil, fmt.Errorf("auth: jwt issuer %q: public key %d: ECDSA keys must be on P-256", c.Issuer, i)
			}
			is.ecdsaKeys = append(is.ecdsaKeys, k)
		default:
			return nil, fmt.Errorf("auth: jwt issuer %q: public key %d: unsupported type %T (want RSA or P-256 ECDSA)", c.Issuer, i, k)
		}
	}
	if len(is.rsaKeys) > 0 {
		is.methods = append(is.methods, algRS256)
	}
	if len(is.ecdsaKeys) > 0 {
		is.methods = append(is.methods, algES256)
	}
	if len(is.methods) == 0 {
		return nil, fmt.Errorf("auth: jwt issuer %q: no HS256 secret and no public key", c.Issuer)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(is.methods),
		jwt.WithIssuer(c.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Leeway),
	}
	if len(c.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(c.Audience...))
	}
	is.parser = jwt.NewParser(opts...)
	return is, nil
}

// key is the issuer's jwt.Keyfunc: it returns only keys of the token's
// algorithm, so that no key is ever used with an algorithm it is not for
// (an HS256 token "signed" with an RSA public key's bytes finds no key).
func (is *issuer) key(t *jwt.Token) (any, error) {
	switch t.Method.Alg() {
	case algHS256:
		if len(is.secret) > 0 {
			return is.secret, nil
		}
	case algRS256:
		if len(is.rsaKeys) > 0 {
			return jwt.VerificationKeySet{Keys: is.rsaKeys}, nil
		}
	case algES256:
		if len(is.ecdsaKeys) > 0 {
			return jwt.VerificationKeySet{Keys: is.ecdsaKeys}, nil
		}
	}
	return nil, errAlgorithm
}

// verifyToken returns the principal a JWT stands for: the issuer its iss
// claim names verifies its signature and claims.
func (a *Authenticator) verifyToken(raw string) (socket.Principal, error) {
	unverified, _, err := a.unverified.ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		return socket.Principal{}, tokenError(err, nil)
	}
	name, err := unverified.Claims.GetIssuer()
	if err != nil || name == "" {
		return socket.Principal{}, unauthenticated("token has no issuer (iss)")
	}
	is := a.issuers[name]
	if is == nil {
		return socket.Principal{}, unauthenticated("unknown token issuer")
	}
	if !slices.Contains(is.methods, unverified.Method.Alg()) {
		return socket.Principal{}, tokenError(errAlgorithm, nil)
	}
	claims := jwt.MapClaims{}
	if _, err := is.parser.ParseWithClaims(raw, claims, is.key); err != nil {
		return socket.Principal{}, tokenError(err, claims)
	}
	sub, err := claims.GetSubject()
	if err != nil {
		return socket.Principal{}, tokenError(err, claims)
	}
	if sub == "" {
		return socket.Principal{}, unauthenticated("token has no subject (sub)")
	}
	return socket.Principal{Subject: sub, Roles: roles(claims[is.rolesClaim])}, nil
}

// roles reads a roles claim: a JSON array of strings or a space-separated
// string. Any other value grants no roles.
func roles(claim any) []string {
	switch v := claim.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, r := range v {
			s, ok := r.(string)
			if !ok {
				return nil
			}
			if s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// tokenProblems say what is wrong with a token for the errors parsing or
// verifying it returns, the first that matches first (a verification
// error may join several).
var tokenProblems = []struct {
	err error
	msg string
}{
	{errAlgorithm, "token signed with an algorithm this issuer does not use"},
	{jwt.ErrTokenMalformed, "malformed token"},
	{jwt.ErrTokenUnverifiable, "token signed with an unsupported algorithm"},
	{jwt.ErrTokenSignatureInvalid, "invalid token signature"},
	{jwt.ErrInvalidType, "token has a claim of the wrong type"},
	{jwt.ErrTokenExpired, "token expired"},
	{jwt.ErrTokenNotValidYet, "token not valid yet"},
	{jwt.ErrTokenUsedBeforeIssued, "token issued in the future"},
	{jwt.ErrTokenInvalidIssuer, "unknown token issuer"},
	{jwt.ErrTokenInvalidAudience, "token is not meant for this audience"},
}

// tokenError maps an error from parsing or verifying a token to an
// UNAUTHENTICATED error whose message says what is wrong without the
// library's internals. claims, when not nil, are the token's claims.
func tokenError(err error, claims jwt.MapClaims) *status.Error {
	for _, p := range tokenProblems {
		if errors.Is(err, p.err) {
			return unauthenticated(p.msg)
		}
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		if exp, _ := claims.GetExpirationTime(); exp == nil {
			return unauthenticated("token has no expiry (exp)")
		}
		return unauthenticated("token has no audience (aud)")
	}
	return unauthenticated("invalid token")
}
