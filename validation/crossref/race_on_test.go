//go:build race

package crossref

// raceSlowdown scales the wall-clock bounds of the tests that guard against
// quadratic work (a Check of tens of thousands of destinations): the race
// detector's instrumentation makes the same work several times slower
// (`make test-race`), while the quadratic versions they catch took 10-100x
// the bound without it.
const raceSlowdown = 10
