package catalog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// fullStore writes a closed store with topics, and a group with enough
// offsets to need branch pages.
func fullStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), File)
	c, _ := open(t, path, false)
	for _, name := range []string{"a", "b", "c"} {
		require.NoError(t, c.PutTopic(name, Topic{Config: TopicConfig{Partitions: 2}, Partitions: 2}))
	}
	offs := map[TopicPartition]int64{}
	for p := range int32(3000) {
		offs[TopicPartition{Topic: "a", Partition: p}] = int64(p)
	}
	require.NoError(t, c.CommitOffsets("big", offs, time.Now()))
	require.NoError(t, c.CommitOffsets("small", map[TopicPartition]int64{{Topic: "b"}: 7}, time.Now()))
	require.NoError(t, c.Close(true))
	return path
}

// pageOfType returns the first page in use of a type bbolt names
// ("branch", "leaf", "freelist").
func pageOfType(t *testing.T, path, typ string) (id, size int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for i := 2; ; i++ {
			info, err := tx.Page(i)
			if err != nil || info == nil {
				return err
			}
			if info.Type == typ {
				id = int64(i)
				return nil
			}
		}
	})
	require.NoError(t, err)
	require.NotZero(t, id, "no %s page", typ)
	return id, int64(db.Info().PageSize)
}

// patch rewrites the file at path with edit applied to its bytes.
func patch(t *testing.T, path string, edit func(data []byte) []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, edit(data), 0o600))
}

func TestOpenRefusesDamageAndLeavesIt(t *testing.T) {
	ps := int64(os.Getpagesize())
	garble := func(from, to int64) func([]byte) []byte {
		return func(data []byte) []byte {
			rng := rand.New(rand.NewPCG(uint64(from), uint64(to)))
			for i := from; i < min(to, int64(len(data))); i++ {
				data[i] = byte(rng.Uint32())
			}
			return data
		}
	}
	damages := map[string]func(t *testing.T, path string){
		"zero-length":  func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 0)) },
		"one page":     func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, ps)) },
		"cut short":    func(t *testing.T, path string) { require.NoError(t, os.Truncate(path, 3*ps)) },
		"garbage":      func(t *testing.T, path string) { patch(t, path, garble(0, 1<<40)) },
		"meta pages":   func(t *testing.T, path string) { patch(t, path, garble(0, 2*ps)) },
		"pages after":  func(t *testing.T, path string) { patch(t, path, garble(2*ps, 1<<40)) },
		"renamed root": func(t *testing.T, path string) { patch(t, path, renameKey("topics", "topicw")) },
		"branch cycle": func(t *testing.T, path string) {
			// A branch page whose first child is itself: bbolt's cursor
			// would descend forever.
			id, size := pageOfType(t, path, "branch")
			patch(t, path, func(data []byte) []byte {
				binary.NativeEndian.PutUint64(data[id*size+pageHeaderSize+8:], uint64(id))
				return data
			})
		},
		"freelist out of range": func(t *testing.T, path string) {
			id, size := pageOfType(t, path, "freelist")
			patch(t, path, func(data []byte) []byte {
				binary.NativeEndian.PutUint16(data[id*size+10:], 1)
				binary.NativeEndian.PutUint64(data[id*size+pageHeaderSize:], 1<<40)
				return data
			})
		},
		"leaf element past its page": func(t *testing.T, path string) {
			id, size := pageOfType(t, path, "leaf")
			patch(t, path, func(data []byte) []byte {
				binary.NativeEndian.PutUint32(data[id*size+pageHeaderSize+4:], 1<<30) // the first element's pos
				return data
			})
		},
	}
	for name, damage := range damages {
		t.Run(name, func(t *testing.T) {
			path := fullStore(t)
			damage(t, path)
			before, err := os.ReadFile(path)
			require.NoError(t, err)
			for _, readOnly := range []bool{true, false} {
				_, _, err := Open(path, 0o600, readOnly, false)
				require.ErrorIs(t, err, ErrDamaged, "read-only %v", readOnly)
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				require.True(t, bytes.Equal(before, after), "a damaged store is left as it was")
			}
		})
	}
}

// renameKey replaces every copy of a key's bytes.
func renameKey(from, to string) func([]byte) []byte {
	return func(data []byte) []byte { return bytes.ReplaceAll(data, []byte(from), []byte(to)) }
}

// TestOpenSurvivesRandomDamage: whatever bytes change, Open either refuses
// the store (leaving it as it was) or returns one whose readers work.
func TestOpenSurvivesRandomDamage(t *testing.T) {
	path := fullStore(t)
	orig, err := os.ReadFile(path)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	rounds := 300
	if testing.Short() {
		rounds = 50
	}
	refused := 0
	for round := range rounds {
		data := bytes.Clone(orig)
		switch rng.IntN(3) {
		case 0:
			data = data[:rng.IntN(len(data))]
		case 1:
			for range 1 + rng.IntN(8) {
				data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
			}
		case 2:
			from := rng.IntN(len(data))
			for i := from; i < min(len(data), from+rng.IntN(600)); i++ {
				data[i] = byte(rng.Uint32())
			}
		}
		for _, readOnly := range []bool{true, false} {
			require.NoError(t, os.WriteFile(path, data, 0o600))
			c, _, err := Open(path, 0o600, readOnly, true)
			if err != nil {
				require.ErrorIs(t, err, ErrDamaged, "round %d", round)
				after, err := os.ReadFile(path)
				require.NoError(t, err)
				require.True(t, bytes.Equal(data, after), "round %d: a damaged store is left as it was", round)
				refused++
				continue
			}
			_, err = c.Topics()
			require.NoError(t, err, "round %d", round)
			groups, err := c.Groups()
			require.NoError(t, err)
			for _, g := range groups {
				_, err = c.Committed(g, nil)
				require.NoError(t, err)
			}
			_, err = c.LastCommits()
			require.NoError(t, err)
			require.NoError(t, c.Close(false), fmt.Sprint("round ", round))
		}
	}
	require.Positive(t, refused)
}
