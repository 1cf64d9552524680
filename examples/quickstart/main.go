// Command quickstart writes a few record batches to a log segment in Kafka's
// format, closes it as a crash would, recovers it and reads the records back.
//
//	go run ./examples/quickstart            # uses ./data
//	go run ./examples/quickstart -temp      # uses a temporary directory
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/embedstream/stream/segment"
)

func main() {
	temp := flag.Bool("temp", false, "use a temporary directory instead of ./data")
	flag.Parse()
	dir := "data/quickstart"
	if *temp {
		d, err := os.MkdirTemp("", "embedstream-quickstart-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := run(dir); err != nil {
		log.Fatal(err)
	}
}

func run(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfg := &segment.Config{Perm: 0o600, MaxBytes: 1 << 20}
	seg, err := segment.Create(cfg, dir, 0)
	if err != nil {
		return err
	}
	var b segment.Builder
	now := time.Now().UnixMilli()
	next := int64(0)
	for i, order := range []string{"apples", "pears", "plums"} {
		b.Reset(0)
		b.Add(now, []byte(fmt.Sprintf("order-%d", i)), []byte(order), []segment.Header{{Key: "source", Value: []byte("quickstart")}})
		batch := b.Finish()
		batch.SetBaseOffset(next)
		if _, err := seg.Append(batch); err != nil {
			return err
		}
		next = batch.LastOffset() + 1
	}
	fmt.Printf("wrote %d records (%d bytes) to %s\n", next, seg.Size(), filepath.Join(dir, segment.FileName(0, segment.LogSuffix)))
	// Close without the clean-shutdown trim, as a crash would leave it.
	if err := seg.Close(false); err != nil {
		return err
	}
	seg, rec, err := segment.OpenActive(cfg, dir, 0, true)
	if err != nil {
		return err
	}
	defer seg.Close(true)
	fmt.Printf("recovered: next offset %d, %d damaged bytes cut\n", seg.Next(), rec.Truncated)
	view, err := seg.Read(0, seg.Next(), 1<<20)
	if err != nil {
		return err
	}
	defer view.Release()
	for data := view.Data; len(data) > 0; {
		batch, err := segment.Parse(data)
		if err != nil {
			return err
		}
		it := batch.Records()
		var r segment.Record
		for it.Next(&r) {
			fmt.Printf("offset %d  key %-8s value %s\n", r.Offset, r.Key, r.Value)
		}
		if err := it.Err(); err != nil {
			return err
		}
		data = data[len(batch):]
	}
	return nil
}
