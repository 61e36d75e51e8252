package socket

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/streamgate/streamgate/services/socket/keyring"
)

// lookup finds the key whose secret is presented in ctx's metadata
// ("authorization: Bearer SECRET").
func lookup(ctx context.Context, k *keyring.Keyring) (*keyring.Entry, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(MetadataAuthorization)
	if len(vals) == 0 {
		return nil, Errorf(CodeUnauthenticated, "missing %q metadata: send %q", MetadataAuthorization, "Bearer KEY")
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, Errorf(CodeUnauthenticated, "malformed %q metadata: want %q", MetadataAuthorization, "Bearer KEY")
	}
	e, err := k.Find(secret)
	if err != nil {
		return nil, err
	}
	return e, nil
}
