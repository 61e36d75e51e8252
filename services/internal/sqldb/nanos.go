package sqldb

import (
	"database/sql"
	"time"
)

// The stores keep times in BIGINT columns as unix nanoseconds, 0 for none
// (the zero time): the same in both dialects, and in the Node and Python
// runtimes' stores.

// Nanos is t as a column keeps it: unix nanoseconds, 0 for the zero time.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// NanosInto is a Scan destination that reads such a column into *t, in
// UTC; 0 reads as the zero time.
//
//	err := row.Scan(&u.ID, sqldb.NanosInto(&u.CreatedAt))
func NanosInto(t *time.Time) sql.Scanner { return nanosDest{t} }

type nanosDest struct{ t *time.Time }

func (d nanosDest) Scan(src any) error {
	var n sql.NullInt64
	if err := n.Scan(src); err != nil {
		return err
	}
	*d.t = time.Time{}
	if n.Int64 != 0 {
		*d.t = time.Unix(0, n.Int64).UTC()
	}
	return nil
}
