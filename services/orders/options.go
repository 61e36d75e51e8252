package orders

import "time"

// DefaultPurchaseLease is how long BEGIN_PURCHASE holds an order for its
// purchase when Register is given no WithPurchaseLease.
const DefaultPurchaseLease = 60 * time.Second

// Option tunes the orders service at Register.
type Option func(*service)

// WithPurchaseLease sets how long a purchase holds an order (and its
// voucher) after BEGIN_PURCHASE before an edit or another purchase may
// take it over. Default DefaultPurchaseLease; it must be positive.
func WithPurchaseLease(d time.Duration) Option {
	return func(s *service) { s.lease = d }
}

// withClock sets the clock leases are measured on; time.Now by default.
// Tests use it to let leases expire without waiting.
func withClock(now func() time.Time) Option {
	return func(s *service) { s.now = now }
}
