// Package coalesce is how the runtime and the gateway share identical reads:
// the key that tells identical requests apart, the canonical form of a JSON
// body, and the Group that runs each piece of identical work once. It is
// streamgate's own, not public API.
//
//	k := coalesce.Key("GET_USER", "1", body, "v1", coalesce.Scope(subject, roles), epoch)
//	fp := coalesce.CanonicalJSON(body) // {"b":1, "a":2} and {"a":2,"b":1} alike
//	res, err, shared := group.Do(ctx, k, fetch)
package coalesce

import (
	"bytes"
	"encoding/json"
	"strings"
	"unsafe"
)

// Key builds the key of a read: the action, the resource id, the
// body in canonical form (so key order and spacing do not matter), the API
// version, the caller's visibility scope ("" when the answer is the same
// for everyone) and the read's epoch (Meta.ReadEpoch: reads of different
// epochs never share an answer).
func Key(action, id string, body []byte, version, scope, epoch string) string {
	b := AppendKey(make([]byte, 0, KeyLen(action, id, body, version, scope, epoch)), action, id, body, version, scope, epoch)
	return unsafe.String(unsafe.SliceData(b), len(b)) // b is never written again
}

// AppendKey appends Key's bytes to dst, for a caller that prefixes them
// with its own (the gateway's cache keys name the service first).
func AppendKey(dst []byte, action, id string, body []byte, version, scope, epoch string) []byte {
	for _, part := range [...]string{action, id, version, scope, epoch} {
		dst = append(dst, part...)
		dst = append(dst, 0)
	}
	return append(dst, CanonicalJSON(body)...)
}

// KeyLen is about how long Key's bytes are: exactly, for a body already
// in canonical form.
func KeyLen(action, id string, body []byte, version, scope, epoch string) int {
	return len(action) + len(id) + len(body) + len(version) + len(scope) + len(epoch) + 5
}

// CanonicalJSON returns body with insignificant differences removed:
// whitespace, and the order of object keys. Invalid JSON is returned as is.
// A body that is already compact with its keys in order (most bodies) is
// returned without being decoded.
func CanonicalJSON(body []byte) []byte {
	trimmed := bytes.Trim(body, " \t\r\n") // JSON's whitespace only
	if len(trimmed) == 0 {
		return nil
	}
	if alreadyCanonical(trimmed) {
		return trimmed
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.InputOffset() != int64(len(trimmed)) || foldedKeys(v) {
		// Invalid, trailing data, or keys that differ only in case (Go
		// decodes those into one field, so their order matters): keep
		// the bytes, which only share answers with identical bodies.
		return trimmed
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)  // as the fast path leaves <, > and & alone
	if enc.Encode(v) != nil { // maps encode with sorted keys
		return trimmed
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// foldedKeys reports whether any object in v has two keys equal under
// case folding.
func foldedKeys(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		seen := make(map[string]bool, len(t))
		for k, e := range t {
			f := strings.ToLower(k)
			if seen[f] || foldedKeys(e) {
				return true
			}
			seen[f] = true
		}
	case []any:
		for _, e := range t {
			if foldedKeys(e) {
				return true
			}
		}
	}
	return false
}

// alreadyCanonical reports, in one pass and without allocating for
// shallow bodies, whether body has no whitespace outside strings and every
// object's keys (none escaped) in increasing order. It does not validate:
// invalid JSON that passes stays as it is, which only means it is coalesced
// with byte-identical bodies.
func alreadyCanonical(body []byte) bool {
	var lastKey [16][]byte // per nesting depth: the previous key, nil at an object's start
	var isObject [16]bool
	depth := 0
	expectKey := false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case ' ', '\t', '\n', '\r':
			return false
		case '{', '[':
			if depth++; depth >= len(lastKey) {
				return false
			}
			isObject[depth], lastKey[depth] = c == '{', nil
			expectKey = c == '{'
		case '}', ']':
			if depth == 0 {
				return false
			}
			depth--
			expectKey = false
		case ',':
			expectKey = isObject[depth]
		case '"':
			start := i + 1
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					if expectKey {
						return false // escaped keys: let the decoder compare them
					}
					i++
				}
			}
			if expectKey {
				key := body[start:min(i, len(body))]
				if lastKey[depth] != nil && bytes.Compare(lastKey[depth], key) >= 0 {
					return false
				}
				lastKey[depth] = key
				expectKey = false
			}
		}
	}
	return depth == 0
}
