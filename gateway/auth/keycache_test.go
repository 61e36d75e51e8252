package auth

import (
	"fmt"
	"hash/maphash"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
	"github.com/streamgate/streamgate/status"
)

// newKeyAuthenticator returns an Authenticator holding n API keys,
// "secret-0" to "secret-{n-1}", whose subjects are "key-0" and so on.
func newKeyAuthenticator(t testing.TB, n int) *Authenticator {
	t.Helper()
	keys := make([]config.APIKey, n)
	for i := range keys {
		keys[i] = config.APIKey{Name: fmt.Sprintf("key-%d", i), Hash: keyring.Hash(fmt.Sprintf("secret-%d", i)), Roles: []string{"user"}}
	}
	a, err := New(config.Auth{APIKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustVerify(t testing.TB, a *Authenticator, secret, subject string) {
	t.Helper()
	p, err := a.verifyKey(secret)
	if err != nil || p.Subject != subject || !p.HasRole("user") {
		t.Fatalf("key %q: %+v, %v; want subject %q with role user", secret, p, err, subject)
	}
}

func mustRefuse(t testing.TB, a *Authenticator, secret string) {
	t.Helper()
	if p, err := a.verifyKey(secret); status.CodeOf(err) != socket.CodeUnauthenticated || p.Subject != "" {
		t.Fatalf("key %q: %+v, %v; want UNAUTHENTICATED", secret, p, err)
	}
}

// A key verified once is answered from the cache from then on; keys
// that differ from it in any way, however close, are refused every time
// and never stored.
func TestKeyCacheNeverAcceptsAWrongKey(t *testing.T) {
	t.Parallel()
	a := newKeyAuthenticator(t, 2)
	mustVerify(t, a, "secret-0", "key-0")
	if _, ok := a.verified.get("secret-0"); !ok {
		t.Fatal("a verified key is not in the cache")
	}
	wrong := []string{"secret-", "secret-00", "secret-2", "Secret-0", "secret-0 ", " secret-0", "secret-\x00", "", "secret-1x"}
	for range 2 {
		for _, w := range wrong {
			mustRefuse(t, a, w)
		}
	}
	if n := a.verified.len(); n != 1 {
		t.Fatalf("the cache holds %d keys after refusals; want 1 (refused keys are never stored)", n)
	}
	mustVerify(t, a, "secret-0", "key-0")
	mustVerify(t, a, "secret-1", "key-1")
}

// An entry is used only when the whole presented key equals the one it
// was stored for: a key whose hash finds another key's entry (a
// collision) goes to the keyring, which refuses it.
func TestKeyCacheComparesTheWholeKey(t *testing.T) {
	t.Parallel()
	a := newKeyAuthenticator(t, 1)
	mustVerify(t, a, "secret-0", "key-0")
	v, _ := a.verified.store.GetIfPresent(maphash.String(a.verified.seed, "secret-0"))
	a.verified.store.Set(maphash.String(a.verified.seed, "guess"), v) // "guess" collides with secret-0
	mustRefuse(t, a, "guess")
	a.verified.store.Set(maphash.String(a.verified.seed, "secret-0"), &verifiedKey{secret: "secret-1", principal: v.principal})
	if _, ok := a.verified.get("secret-0"); ok {
		t.Fatal("an entry stored for another key answered")
	}
	mustVerify(t, a, "secret-0", "key-0") // from the keyring, then stored again
}

// The cache holds at most keyCacheSize keys, however many are verified;
// the keys it dropped are still accepted (by the keyring).
func TestKeyCacheIsBounded(t *testing.T) {
	t.Parallel()
	n := keyCacheSize + keyCacheSize/2
	a := newKeyAuthenticator(t, n)
	for i := range n {
		mustVerify(t, a, fmt.Sprintf("secret-%d", i), fmt.Sprintf("key-%d", i))
	}
	a.verified.store.CleanUp()
	if got := a.verified.len(); got > keyCacheSize || got == 0 {
		t.Fatalf("the cache holds %d keys after %d were verified; want 1..%d", got, n, keyCacheSize)
	}
	for i := range n {
		mustVerify(t, a, fmt.Sprintf("secret-%d", i), fmt.Sprintf("key-%d", i))
	}
}

// A configuration without a key makes a new Authenticator, whose cache
// does not know the key: it is refused at once.
func TestKeyCacheEndsWithItsConfiguration(t *testing.T) {
	t.Parallel()
	a := newKeyAuthenticator(t, 2)
	mustVerify(t, a, "secret-1", "key-1")
	mustVerify(t, a, "secret-1", "key-1")
	b := newKeyAuthenticator(t, 1) // key-1 removed
	mustRefuse(t, b, "secret-1")
	mustVerify(t, b, "secret-0", "key-0")
}

// Many callers at once, with good and wrong keys, each get their own
// answer (run with -race).
func TestKeyCacheConcurrently(t *testing.T) {
	t.Parallel()
	a := newKeyAuthenticator(t, 8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := (g + i) % 8
				mustVerify(t, a, fmt.Sprintf("secret-%d", k), fmt.Sprintf("key-%d", k))
				mustRefuse(t, a, fmt.Sprintf("secret-%d!", k))
			}
		})
	}
	wg.Wait()
	if n := a.verified.len(); n != 8 {
		t.Fatalf("the cache holds %d keys; want the 8 good ones", n)
	}
}

// What a key presented again costs.
//
//	go test -run '^$' -bench VerifyKey -benchmem ./gateway/auth/
func BenchmarkVerifyKey(b *testing.B) {
	a := newKeyAuthenticator(b, 2)
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.verifyKey("secret-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("keyring", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.keys.Verify("secret-1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
