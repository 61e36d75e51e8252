//go:build !race

package gateway_test

// raceDetector is whether the tests run with -race (see race_on_test.go).
const raceDetector = false
