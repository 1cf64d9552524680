package main

import (
	"bufio"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/stretchr/testify/require"
)

// snapshot returns every file's contents under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	files := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		files[path] = string(data)
		return err
	}))
	return files
}

func decode(t *testing.T, s string) []jsonRecord {
	var out []jsonRecord
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var r jsonRecord
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		out = append(out, r)
	}
	return out
}

func TestReplay(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, buildDemo(t.Context(), dir))
	before := snapshot(t, dir)

	var stdout, stderr strings.Builder
	sum, err := replay(t.Context(), dir, nil, time.Time{}, &stdout, &stderr)
	require.NoError(t, err)
	require.EqualValues(t, demoRecords, sum.Records)
	require.Equal(t, 3, sum.Partitions)
	recs := decode(t, stdout.String())
	require.Len(t, recs, demoRecords)
	for i, r := range recs {
		// One record a minute: the merge restores the publishing order.
		require.Equal(t, demoStart.Add(time.Duration(i)*time.Minute).Format(time.RFC3339Nano), r.Timestamp)
		require.NotNil(t, r.Value)
	}
	require.Equal(t, []byte{0xff, 0xfe, 9}, recs[9].Headers[0].ValueBase64)
	require.Contains(t, stderr.String(), "done: 30 records")

	// From a time, and for one topic.
	stdout.Reset()
	sum, err = replay(t.Context(), dir, []string{demoTopic}, demoStart.Add(25*time.Minute+time.Second), &stdout, io.Discard)
	require.NoError(t, err)
	require.EqualValues(t, 4, sum.Records)
	require.Equal(t, demoStart.Add(26*time.Minute).Format(time.RFC3339Nano), decode(t, stdout.String())[0].Timestamp)

	require.Equal(t, before, snapshot(t, dir), "a replay changes nothing")

	_, err = replay(t.Context(), dir, []string{"nope"}, time.Time{}, io.Discard, io.Discard)
	require.ErrorIs(t, err, stream.ErrTopicNotFound)
}

func TestReplayRefusesADirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	b, err := stream.Open(dir, nil)
	require.NoError(t, err)
	defer b.Close()
	_, err = replay(t.Context(), dir, nil, time.Time{}, io.Discard, io.Discard)
	require.ErrorIs(t, err, stream.ErrLocked)
	require.Contains(t, err.Error(), "replay a copy")
}

// Without -dir, run builds a demo directory, which it prints and keeps for
// more replays, saying how to remove it.
func TestRunWithoutDir(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	var stdout, stderr strings.Builder
	require.NoError(t, run(t.Context(), "", "", "", &stdout, &stderr))
	require.Len(t, decode(t, stdout.String()), 10, "the demo replays from its twentieth minute")
	_, rest, ok := strings.Cut(stderr.String(), "built a demo directory ")
	require.True(t, ok, stderr.String())
	dir, _, _ := strings.Cut(rest, ":")
	require.True(t, strings.HasSuffix(stderr.String(),
		"replay: the demo directory stays in "+dir+": replay it with -dir "+dir+", remove it with: rm -r "+dir+"\n"), stderr.String())
	stdout.Reset()
	require.NoError(t, run(t.Context(), dir, "", "", &stdout, io.Discard))
	require.Len(t, decode(t, stdout.String()), demoRecords, "kept whole: every record from the start")

	require.ErrorContains(t, run(t.Context(), "", "", "yesterday", io.Discard, io.Discard), "-from")
}
