package orders

// WithClock exposes withClock to the black-box tests.
var WithClock = withClock

// StoreError exposes storeError, the answer a Store error becomes, to the
// black-box tests.
var StoreError = storeError
