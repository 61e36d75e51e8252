package once

import (
	"context"
	"database/sql"
)

// WriteMemory is m.Write for a write whose result is a V: it returns what
// write returned, or the zero V and the error of the write or of its key
// (an *AppliedError when the key was applied already).
func WriteMemory[V any](ctx context.Context, m *Memory, write func() (V, error)) (V, error) {
	var kept V
	err := m.Write(ctx, keepIn(&kept, write))
	return result(kept, err)
}

// WriteTable is t.Write for a write whose result is a V, as WriteMemory
// is for a Memory.
func WriteTable[V any](ctx context.Context, t *Table, write func(tx *sql.Tx) (V, error)) (V, error) {
	var kept V
	err := t.Write(ctx, func(tx *sql.Tx) (any, error) {
		return keepIn(&kept, func() (V, error) { return write(tx) })()
	})
	return result(kept, err)
}

// keepIn adapts a write returning a V to Write's, keeping its result in
// *kept when it succeeds.
func keepIn[V any](kept *V, write func() (V, error)) func() (any, error) {
	return func() (any, error) {
		v, err := write()
		if err != nil {
			return nil, err
		}
		*kept = v
		return v, nil
	}
}

// result is the kept V of a write that succeeded, the zero V with the
// error of one that did not.
func result[V any](kept V, err error) (V, error) {
	if err != nil {
		var none V
		return none, err
	}
	return kept, nil
}
