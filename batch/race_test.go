//go:build race

package batch_test

// raceEnabled: the race detector slows decompression tenfold, so tests
// that decompress hundreds of MiB scale down.
const raceEnabled = true
