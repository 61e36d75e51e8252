package memstore_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/streamgate/streamgate/services/internal/memstore"
	"github.com/streamgate/streamgate/services/internal/once"
)

var errGone = errors.New("no such entry")

func TestGet(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	entries := map[string]int{"a": 1}
	if v, err := memstore.Get(&mu, entries, "a", errGone); v != 1 || err != nil {
		t.Errorf("Get(a) = %d, %v; want 1, nil", v, err)
	}
	if v, err := memstore.Get(&mu, entries, "b", errGone); v != 0 || !errors.Is(err, errGone) {
		t.Errorf("Get(b) = %d, %v; want 0, %v", v, err, errGone)
	}
}

// TestChangeOncePerKey: a change under a key applies once, a second one
// under the same key changes nothing and is an *once.AppliedError holding
// the first result; a missing entry or a failed change keeps no key.
func TestChangeOncePerKey(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		keys once.Memory
	)
	entries := map[string]int{"a": 1}
	add := func(n int) func(int) (int, error) {
		return func(v int) (int, error) {
			entries["a"] = v + n
			return v + n, nil
		}
	}
	ctx := once.With(context.Background(), once.Key{Subject: "s", ID: "k1", Fingerprint: "f"})

	if _, err := memstore.Change(ctx, &mu, &keys, entries, "b", errGone, add(1)); !errors.Is(err, errGone) {
		t.Fatalf("Change(b) = %v, want %v", err, errGone)
	}
	failed := errors.New("refused")
	if _, err := memstore.Change(ctx, &mu, &keys, entries, "a", errGone, func(int) (int, error) { return 0, failed }); !errors.Is(err, failed) {
		t.Fatalf("a failing change = %v, want %v", err, failed)
	}
	if _, ok, _ := keys.Applied(ctx, once.Key{Subject: "s", ID: "k1"}); ok {
		t.Fatal("a failed write kept its key")
	}

	if v, err := memstore.Change(ctx, &mu, &keys, entries, "a", errGone, add(1)); v != 2 || err != nil {
		t.Fatalf("first Change = %d, %v; want 2, nil", v, err)
	}
	v, err := memstore.Change(ctx, &mu, &keys, entries, "a", errGone, add(1))
	var applied *once.AppliedError
	if !errors.As(err, &applied) || v != 0 {
		t.Fatalf("second Change = %d, %v; want 0 and an *once.AppliedError", v, err)
	}
	if got := string(applied.Record.Result); got != "2" {
		t.Errorf("the kept result is %s, want 2", got)
	}
	if entries["a"] != 2 {
		t.Errorf("the entry is %d after a replayed change, want 2", entries["a"])
	}

	if v, err := memstore.Change(context.Background(), &mu, &keys, entries, "a", errGone, add(1)); v != 3 || err != nil {
		t.Errorf("Change without a key = %d, %v; want 3, nil", v, err)
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := memstore.Select(&mu, map[string]int{"a": 1, "b": 2, "c": 3}, func(v int) bool { return v != 2 })
	slices.Sort(got)
	if !slices.Equal(got, []int{1, 3}) {
		t.Errorf("Select = %v, want [1 3]", got)
	}
}

// TestAddOncePerKey: an add under a key applies once, keeping the entry
// as its result; a taken id is the store's error and keeps no key.
func TestAddOncePerKey(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		keys once.Memory
	)
	errTaken := errors.New("taken")
	entries := map[string]int{"a": 1}
	ctx := once.With(context.Background(), once.Key{Subject: "s", ID: "k", Fingerprint: "f"})
	if err := memstore.Add(ctx, &mu, &keys, entries, "a", 5, errTaken); !errors.Is(err, errTaken) {
		t.Fatalf("Add of a taken id = %v, want %v", err, errTaken)
	}
	if err := memstore.Add(ctx, &mu, &keys, entries, "b", 2, errTaken); err != nil || entries["b"] != 2 {
		t.Fatalf("Add(b) = %v, entries %v", err, entries)
	}
	var applied *once.AppliedError
	if err := memstore.Add(ctx, &mu, &keys, entries, "c", 3, errTaken); !errors.As(err, &applied) || string(applied.Record.Result) != "2" {
		t.Fatalf("Add under an applied key = %v, want an *once.AppliedError keeping 2", err)
	}
	if _, ok := entries["c"]; ok {
		t.Error("an add under an applied key stored its entry")
	}
}
