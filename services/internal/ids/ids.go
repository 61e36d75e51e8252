// Package ids makes the random ids the services give what they create: a
// prefix naming the kind and 12 hex digits (48 random bits).
//
//	id := ids.New("ord_") // "ord_3f9a0c12be47"
package ids

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns prefix followed by 12 random hex digits.
func New(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return prefix + hex.EncodeToString(b[:])
}
