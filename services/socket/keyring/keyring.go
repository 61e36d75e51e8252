// Package keyring holds the keys callers present: a socket server accepts
// the keys of its keyring (socket.WithKeys), and the gateway checks its
// API keys against one the same way.
//
//	keys, err := keyring.New(
//		keyring.Key{Name: "gateway", Hash: keyring.Hash(secret), Delegate: true},
//		keyring.Key{Name: "reports", Secret: other, Actions: []string{"LIST_ORDERS"}},
//	)
//	srv, err := socket.NewServer(cfg, socket.WithKeys(keys))
//	keys.Revoke("reports") // ends the key's open streams
//
// Keys are kept as SHA-256 hashes and looked up by hash, compared in
// constant time; configuration can hold the hash alone (Key.Hash).
package keyring

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/status"
)

// Key is a credential a caller presents when it opens a stream, as gRPC
// metadata `authorization: Bearer SECRET`.
type Key struct {
	// Name identifies the key in stats and logs and is the principal's
	// subject when the key does not delegate. Required and unique.
	Name string
	// Secret is the key itself. Set Secret or Hash, not both.
	Secret string
	// Hash is Hash(secret), for configuration that must not hold secrets.
	Hash string
	// Actions, when not empty, are the only actions the key may call;
	// others get PERMISSION_DENIED.
	Actions []string
	// Roles are the key's roles when the key itself is the principal.
	Roles []string
	// Delegate lets the key name another principal in a request's meta
	// (the gateway forwarding its end users). Without it such requests get
	// PERMISSION_DENIED.
	Delegate bool
}

// Hash returns the form of a secret that Key.Hash takes: "sha256:" and
// the hex digest.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Keyring holds the keys a server (or the gateway) accepts. It is safe for concurrent use;
// keys can be added and revoked while the server runs, and revoking a key
// ends its open streams.
type Keyring struct {
	mu     sync.RWMutex // guards byHash and byName
	byHash map[[sha256.Size]byte]*Entry
	byName map[string]*Entry
}

// Entry is an accepted key as a server holds it for the streams the key
// opened: the key without its secret, and a channel closed when the key
// is revoked.
type Entry struct {
	Key
	hash    [sha256.Size]byte
	actions map[string]bool // nil means all actions
	revoked chan struct{}
}

// New returns a keyring holding keys.
func New(keys ...Key) (*Keyring, error) {
	k := &Keyring{byHash: map[[sha256.Size]byte]*Entry{}, byName: map[string]*Entry{}}
	for _, key := range keys {
		if err := k.Add(key); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// Add accepts a new key. Its name must not be in use.
func (k *Keyring) Add(key Key) error {
	e, err := newEntry(key)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, dup := k.byName[key.Name]; dup {
		return fmt.Errorf("socket: key %q: name already in use", key.Name)
	}
	if _, dup := k.byHash[e.hash]; dup {
		return fmt.Errorf("socket: key %q: the same secret is already in use", key.Name)
	}
	k.byName[key.Name] = e
	k.byHash[e.hash] = e
	return nil
}

// Revoke removes the key with the name and ends its open streams. It
// reports whether such a key existed.
func (k *Keyring) Revoke(name string) bool {
	k.mu.Lock()
	e, ok := k.byName[name]
	if ok {
		delete(k.byName, name)
		delete(k.byHash, e.hash)
	}
	k.mu.Unlock()
	if ok {
		close(e.revoked)
	}
	return ok
}

func newEntry(key Key) (*Entry, error) {
	if key.Name == "" {
		return nil, fmt.Errorf("socket: key without a name")
	}
	e := &Entry{Key: key, revoked: make(chan struct{})}
	switch {
	case key.Secret != "" && key.Hash != "":
		return nil, fmt.Errorf("socket: key %q: set Secret or Hash, not both", key.Name)
	case key.Secret != "":
		e.hash = sha256.Sum256([]byte(key.Secret))
	case key.Hash != "":
		hexDigest, ok := strings.CutPrefix(key.Hash, "sha256:")
		b, err := hex.DecodeString(hexDigest)
		if !ok || err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("socket: key %q: hash must be \"sha256:\" and 64 hex digits", key.Name)
		}
		copy(e.hash[:], b)
	default:
		return nil, fmt.Errorf("socket: key %q: no Secret or Hash", key.Name)
	}
	e.Secret = ""
	if len(key.Actions) > 0 {
		e.actions = make(map[string]bool, len(key.Actions))
		for _, a := range key.Actions {
			e.actions[a] = true
		}
	}
	return e, nil
}

// MayCall reports whether the key may call the action.
func (e *Entry) MayCall(action string) bool {
	return e.actions == nil || e.actions[action]
}

// Revoked returns a channel closed when the key is revoked.
func (e *Entry) Revoked() <-chan struct{} { return e.revoked }

// Anonymous returns the entry of a caller without a key (a server that
// runs without auth): name "anonymous", allowed to delegate, never
// revoked.
func Anonymous() *Entry {
	return &Entry{Key: Key{Name: "anonymous", Delegate: true}, revoked: make(chan struct{})}
}

// Verify returns the key whose secret this is, without its secret; an
// unknown or revoked secret is an UNAUTHENTICATED *status.Error. Other
// edges (the gateway's API keys) use it to check keys the way streams
// are checked.
func (k *Keyring) Verify(secret string) (Key, error) {
	e, err := k.Find(secret)
	if err != nil {
		return Key{}, err
	}
	return e.Key, nil
}

// Find returns the entry whose secret this is: it selects the entry by
// the secret's hash and compares the hashes in constant time. An unknown
// or revoked secret is an UNAUTHENTICATED *status.Error.
func (k *Keyring) Find(secret string) (*Entry, *status.Error) {
	sum := sha256.Sum256([]byte(secret))
	k.mu.RLock()
	e := k.byHash[sum]
	k.mu.RUnlock()
	if e == nil || subtle.ConstantTimeCompare(e.hash[:], sum[:]) != 1 {
		return nil, status.Errorf(status.CodeUnauthenticated, "unknown or revoked key")
	}
	return e, nil
}
