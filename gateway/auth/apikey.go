package auth

import (
	"fmt"
	"slices"

	"github.com/streamgate/streamgate/gateway/config"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/keyring"
)

// newKeys returns a keyring holding the API keys and the subject each
// key's name stands for.
func newKeys(apiKeys []config.APIKey) (*keyring.Keyring, map[string]string, error) {
	keys, err := keyring.New()
	if err != nil {
		return nil, nil, err
	}
	subjects := make(map[string]string, len(apiKeys))
	for _, k := range apiKeys {
		if err := keys.Add(keyring.Key{Name: k.Name, Hash: k.Hash, Roles: slices.Clone(k.Roles)}); err != nil {
			return nil, nil, fmt.Errorf("auth: api key %q: %w", k.Name, err)
		}
		subjects[k.Name] = k.Name
		if k.Subject != "" {
			subjects[k.Name] = k.Subject
		}
	}
	return keys, subjects, nil
}

// verifyKey returns the principal an API key stands for: from the keys
// verified before, or by the keyring (which then remembers it).
func (a *Authenticator) verifyKey(secret string) (socket.Principal, error) {
	if p, ok := a.verified.get(secret); ok {
		return p, nil
	}
	key, err := a.keys.Verify(secret)
	if err != nil {
		return socket.Principal{}, unauthenticated("unknown API key")
	}
	// Clip so that a caller appending to the roles never writes into the
	// key's own slice.
	p := socket.Principal{Subject: a.subjects[key.Name], Roles: slices.Clip(key.Roles)}
	a.verified.put(secret, p)
	return p, nil
}
