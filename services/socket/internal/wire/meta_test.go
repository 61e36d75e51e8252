package wire_test

import (
	"context"
	"errors"
	"testing"

	"github.com/streamgate/streamgate/services/socket/internal/wire"
)

type otherKey struct{}

// TestMetaContextIsAValueOnly: WithMeta adds the meta and nothing else, so
// UnderMeta may hand out the context below, which ends with it.
func TestMetaContextIsAValueOnly(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), otherKey{}, "other"))
	ctx := wire.WithMeta(parent, "meta")
	if wire.MetaValue(ctx) != "meta" || ctx.Value(otherKey{}) != "other" {
		t.Fatalf("values: meta %v, other %v", wire.MetaValue(ctx), ctx.Value(otherKey{}))
	}
	if under, ok := wire.UnderMeta(ctx); !ok || under != parent {
		t.Fatalf("UnderMeta = %v, %v; want the parent", under, ok)
	}
	if under, ok := wire.UnderMeta(parent); ok || under != parent {
		t.Fatalf("UnderMeta of a context WithMeta did not make = %v, %v", under, ok)
	}
	if ctx.Done() != parent.Done() {
		t.Fatal("the meta context has a Done of its own")
	}
	cancel()
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err() = %v once the parent ended", ctx.Err())
	}
	var held wire.MetaContext
	held.Init(parent, "held")
	if wire.MetaValue(&held) != "held" {
		t.Fatal("Init does not set the meta")
	}
}
