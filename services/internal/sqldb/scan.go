package sqldb

import "context"

// Scanner is a *sql.Row or *sql.Rows: what a row scanner reads from.
type Scanner interface{ Scan(dest ...any) error }

// QueryAll runs query (with ? placeholders, rebound for the dialect) and
// returns every row turned into a T by scan, never nil; the first error
// of the query, a scan or the rows ends it.
func QueryAll[T any](ctx context.Context, db *DB, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, db.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
