//go:build !race

package stream

// raceEnabled reports a build with the race detector.
const raceEnabled = false
