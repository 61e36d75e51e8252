package orders

// WithClock exposes withClock to the black-box tests.
var WithClock = withClock
