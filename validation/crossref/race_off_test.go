//go:build !race

package crossref

// raceSlowdown: see race_on_test.go.
const raceSlowdown = 1
