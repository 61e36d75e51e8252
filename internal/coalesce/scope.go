package coalesce

import "strconv"

// Scope returns the visibility scope of a principal (its subject and
// roles) for per-caller answers: the subject and roles, quoted so no two
// principals share one. It is part of every per-caller read's key (here,
// in the gateway's cache) and of the gateway's stored idempotency scopes,
// so its form never changes; it is built with one allocation (none for a
// principal with neither).
func Scope(subject string, roles []string) string {
	if subject == "" && len(roles) == 0 {
		return `""`
	}
	var buf [128]byte // most scopes fit; longer ones grow on the heap
	b := strconv.AppendQuote(buf[:0], subject)
	for _, r := range roles {
		b = append(b, ',')
		b = strconv.AppendQuote(b, r)
	}
	return string(b)
}
