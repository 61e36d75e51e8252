package auth

import (
	"hash/maphash"
	"strings"

	"github.com/maypok86/otter/v2"

	"github.com/streamgate/streamgate/services/socket"
)

// keyCacheSize bounds how many verified API keys an Authenticator
// remembers; a key past it is verified by its hash again, as before.
const keyCacheSize = 1024

// keyCache remembers the principal of API keys already verified, so a
// key presented again costs a keyed hash, a lookup and a constant-time
// comparison instead of a SHA-256 and the keyring's lock.
//
// It holds only keys the keyring accepted: a refused key is never
// stored, so it is verified (and refused) every time. Entries are found
// by a hash of the presented bytes under a seed chosen at random per
// cache, then compared with the whole presented key in constant time:
// which keys are stored is not reachable by timing guesses, and a hash
// collision falls through to the keyring. A cache lives and dies with
// its Authenticator, so a reloaded configuration starts with an empty
// one and a removed key is refused at once.
type keyCache struct {
	seed  maphash.Seed
	store *otter.Cache[uint64, *verifiedKey]
}

// verifiedKey is a presented key the keyring accepted and whom it
// proves.
type verifiedKey struct {
	secret    string
	principal socket.Principal
}

func newKeyCache() *keyCache {
	return &keyCache{
		seed: maphash.MakeSeed(),
		store: otter.Must(&otter.Options[uint64, *verifiedKey]{
			MaximumSize: keyCacheSize,
			// Maintenance runs on the caller: the cache starts no goroutines.
			Executor: func(fn func()) { fn() },
		}),
	}
}

// get returns the principal of secret if it was verified before.
func (c *keyCache) get(secret string) (socket.Principal, bool) {
	v, ok := c.store.GetIfPresent(maphash.String(c.seed, secret))
	if !ok || !equalInConstantTime(v.secret, secret) {
		return socket.Principal{}, false
	}
	return v.principal, true
}

// put remembers that the keyring accepted secret as p's key.
func (c *keyCache) put(secret string, p socket.Principal) {
	c.store.Set(maphash.String(c.seed, secret), &verifiedKey{secret: strings.Clone(secret), principal: p}) // not the request's memory
}

// len is how many keys the cache holds (an estimate while it is
// written).
func (c *keyCache) len() int { return c.store.EstimatedSize() }

// equalInConstantTime reports whether a and b are equal, taking the same
// time for every pair of the same length (crypto/subtle's comparison,
// without converting the strings to byte slices per request).
func equalInConstantTime(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var diff byte
	for i := 0; i < len(a); i++ {
		diff |= a[i] ^ b[i]
	}
	return diff == 0
}
