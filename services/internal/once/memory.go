package once

import (
	"context"
	"sync"
)

// Memory keeps the records of a memory store's keys. Write runs under the
// store's own mutex, so the row and its key change together; Applied
// takes Memory's lock, so it may run without the store's.
type Memory struct {
	mu      sync.Mutex           // guards records
	records map[[2]string]Record // by subject and key
}

var _ Ledger = (*Memory)(nil)

// Applied returns the record of k's subject and id, and whether there is
// one.
func (m *Memory) Applied(_ context.Context, k Key) (Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec, ok := m.records[[2]string{k.Subject, k.ID}]
	return rec, ok, nil
}

// Write runs write, which changes the store's maps and returns the result
// to keep, and keeps it under the key in ctx (From). Call it with the
// store's mutex held. When the key was applied already it changes nothing
// and returns an *AppliedError; when write fails nothing is kept. Without
// a key in ctx it just runs write.
func (m *Memory) Write(ctx context.Context, write func() (any, error)) error {
	k, keyed := From(ctx)
	if !keyed {
		_, err := write()
		return err
	}
	id := [2]string{k.Subject, k.ID}
	m.mu.Lock()
	rec, ok := m.records[id]
	m.mu.Unlock()
	if ok {
		return &AppliedError{Record: rec}
	}
	result, err := write()
	if err != nil {
		return err
	}
	b, err := encode(result)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = map[[2]string]Record{}
	}
	m.records[id] = Record{Fingerprint: k.Fingerprint, Result: b}
	markKept(ctx)
	return nil
}
