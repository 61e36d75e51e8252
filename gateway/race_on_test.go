//go:build race

package gateway_test

// raceDetector is whether the tests run with -race, under which sync.Pool
// drops what it is given at random: allocation counts mean nothing then.
const raceDetector = true
