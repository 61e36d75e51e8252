package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// MaxKeyLength is the longest Idempotency-Key accepted, in bytes.
const MaxKeyLength = 255

// ErrInvalidKey is returned by ParseKey for keys that are empty, longer
// than MaxKeyLength or not printable ASCII.
var ErrInvalidKey = errors.New("idempotency: a key must be 1 to 255 printable ASCII characters")

// ParseKey checks an Idempotency-Key header value. The draft makes it a
// structured-field string ("…", with \" and \\ escapes); the bare form
// most clients send is accepted too. Either way the key is 1 to 255
// characters of printable ASCII (0x20–0x7E: no control characters), and
// the key is what is inside the quotes.
func ParseKey(v string) (string, error) {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		var b strings.Builder
		inner := v[1 : len(v)-1]
		for i := 0; i < len(inner); i++ {
			c := inner[i]
			switch {
			case c == '\\':
				if i+1 == len(inner) || (inner[i+1] != '"' && inner[i+1] != '\\') {
					return "", ErrInvalidKey
				}
				i++
				c = inner[i]
			case c == '"':
				return "", ErrInvalidKey
			}
			b.WriteByte(c)
		}
		v = b.String()
	}
	if len(v) == 0 || len(v) > MaxKeyLength {
		return "", ErrInvalidKey
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", ErrInvalidKey
		}
	}
	return v, nil
}

// Scope is what a key is unique within: the principal (its
// coalesce.Scope(subject, roles)), the API version and the route (method and
// path pattern). Two callers, two versions or two routes never share an
// answer, a lease or a derived key.
type Scope struct {
	Principal, Version, Route, Key string
}

// ID is the scope's id in a store: the hex SHA-256 of its parts.
func (s Scope) ID() string {
	h := sha256.New()
	for _, part := range []string{s.Principal, s.Version, s.Route, s.Key} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// DerivedKey is the idempotency key the gateway sends to a service for
// one action of the request (a pipeline step's name, or the route's
// action): the first 32 hex digits of the scope's id, ":" and the name.
// It is the same on every retry and on every gateway.
func DerivedKey(id, name string) string {
	return id[:32] + ":" + name
}

// Fingerprint identifies a request's content: its method, path, query and
// body in canonical JSON (pass coalesce.CanonicalJSON of the body). The same
// key with another fingerprint is a reuse (422).
func Fingerprint(method, path, query string, canonicalBody []byte) string {
	h := sha256.New()
	for _, part := range []string{method, path, query} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(canonicalBody)
	return hex.EncodeToString(h.Sum(nil))
}
