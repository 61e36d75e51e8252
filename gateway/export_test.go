package gateway

import (
	"context"

	"github.com/streamgate/streamgate/internal/coalesce"
)

// SetCachedETag replaces the ETag of the cached answer of a public read
// without a body (GET_NEWS 1 in v1 of service users); it reports whether
// the cache had the answer. Tests use it to tell a stored ETag from one
// computed again.
func SetCachedETag(g *Gateway, service, version, action, id, etag string) bool {
	key := readKey{service: service, action: action, id: id, version: version}
	e, ok := g.cache.Get(context.Background(), key.String())
	if ok {
		e.ETag = etag
	}
	return ok
}

// Flights returns the Group a gateway shares identical reads through,
// for tests that wait until requests joined a flight.
func Flights(g *Gateway) *coalesce.Group { return &g.flights }
