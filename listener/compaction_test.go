package listener

import (
	"slices"
	"testing"
	"time"

	"github.com/embedstream/stream"
	"github.com/embedstream/stream/batch"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A compacted topic answers a record without a key as Kafka does:
// INVALID_RECORD, with record_errors naming each such record of the batch,
// and nothing of the batch written.
func TestProduceKeylessToCompactedTopic(t *testing.T) {
	b := openBroker(t, &stream.Options{Sync: stream.SyncNever})
	require.NoError(t, b.CreateTopic("c", stream.TopicConfig{Cleanup: stream.CleanupCompact}))
	s := startServer(t, b, nil)
	cl := newClient(t, s, kgo.DefaultProduceTopic("c"))

	err := cl.ProduceSync(t.Context(), &kgo.Record{Value: []byte("v")}).FirstErr()
	require.ErrorIs(t, err, kerr.InvalidRecord)
	require.NoError(t, cl.ProduceSync(t.Context(), &kgo.Record{Key: []byte{}, Value: []byte("v")}).FirstErr(), "an empty key is a key")

	var bld batch.Builder
	bld.Reset(0)
	for _, k := range [][]byte{[]byte("a"), nil, []byte("b"), nil} {
		bld.Add(time.Now().UnixMilli(), k, []byte("v"), nil)
	}
	records := append([]byte(nil), bld.Finish()...)
	for _, v := range []int16{7, 9} {
		p := partitionAnswer(rawAs[*kmsg.ProduceResponse](t, s, produceReq(v, "c", 0, records)))
		require.Equal(t, kerr.InvalidRecord.Code, p.ErrorCode, "v%d", v)
		if v < 8 {
			continue // no record_errors before v8
		}
		require.Len(t, p.ErrorRecords, 2)
		for i, want := range []int32{1, 3} {
			require.Equal(t, want, p.ErrorRecords[i].RelativeOffset)
			require.Contains(t, *p.ErrorRecords[i].ErrorMessage, "compacted topic (cleanup.policy=compact) cannot accept message without key in topic partition c/0")
		}
		require.Contains(t, *p.ErrorMessage, "without key")
	}
	require.Len(t, readAll(t, b, "c", 0), 1, "only the keyed record")
}

// The compaction settings go through CreateTopics, DescribeConfigs,
// IncrementalAlterConfigs (APPEND and SUBTRACT on cleanup.policy, a list)
// and AlterConfigs, by Kafka's names and values.
func TestCompactionConfigs(t *testing.T) {
	b := openBroker(t, nil)
	s := startServer(t, b, nil)
	adm, ctx := newAdmin(t, s), testCtx(t)
	names := []string{"cleanup.policy", "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "max.compaction.lag.ms", "delete.retention.ms"}
	describe := func() map[string]kadm.Config {
		t.Helper()
		rcs, err := adm.DescribeTopicConfigs(ctx, "t")
		require.NoError(t, err)
		rc, err := rcs.On("t", nil)
		require.NoError(t, err)
		out := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			if slices.Contains(names, c.Key) {
				out[c.Key] = c
			}
		}
		require.Len(t, out, len(names))
		return out
	}
	values := func() []string {
		t.Helper()
		d := describe()
		var out []string
		for _, n := range names {
			c := d[n]
			out = append(out, c.MaybeValue())
		}
		return out
	}
	alter := func(cs ...kadm.AlterConfig) error {
		t.Helper()
		resp, err := adm.AlterTopicConfigs(ctx, cs, "t")
		require.NoError(t, err)
		return resp[0].Err
	}

	resps, err := adm.CreateTopics(ctx, 1, 1, map[string]*string{
		"cleanup.policy": kmsg.StringPtr("compact"), "min.cleanable.dirty.ratio": kmsg.StringPtr("0.1"),
		"min.compaction.lag.ms": kmsg.StringPtr("1000"), "max.compaction.lag.ms": kmsg.StringPtr("60000"),
		"delete.retention.ms": kmsg.StringPtr("0"),
	}, "t")
	require.NoError(t, err)
	require.NoError(t, resps["t"].Err)
	info, err := b.DescribeTopic("t")
	require.NoError(t, err)
	c := info.Config
	require.Equal(t, stream.CleanupCompact, c.Cleanup)
	require.Equal(t, 0.1, c.MinCleanableDirtyRatio)
	require.Equal(t, time.Second, c.MinCompactionLag)
	require.Equal(t, time.Minute, c.MaxCompactionLag)
	require.Negative(t, c.DeleteRetention, "Kafka's 0")

	require.Equal(t, []string{"compact", "0.1", "1000", "60000", "0"}, values())
	d := describe()
	synonyms := map[string]string{"cleanup.policy": "log.cleanup.policy", "min.cleanable.dirty.ratio": "log.cleaner.min.cleanable.ratio",
		"min.compaction.lag.ms": "log.cleaner.min.compaction.lag.ms", "max.compaction.lag.ms": "log.cleaner.max.compaction.lag.ms",
		"delete.retention.ms": "log.cleaner.delete.retention.ms"}
	defaults := map[string]string{"cleanup.policy": "delete", "min.cleanable.dirty.ratio": "0.5", "min.compaction.lag.ms": "0",
		"max.compaction.lag.ms": "9223372036854775807", "delete.retention.ms": "86400000"}
	for _, n := range names {
		require.Equal(t, kmsg.ConfigSourceDynamicTopicConfig, d[n].Source, n)
		require.Len(t, d[n].Synonyms, 2, n)
		require.Equal(t, synonyms[n], d[n].Synonyms[1].Key, n)
		syn := d[n].Synonyms[1]
		require.Equal(t, defaults[n], *syn.Value, n)
	}

	// cleanup.policy is a list: APPEND and SUBTRACT edit it.
	require.NoError(t, alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}))
	require.Equal(t, "compact,delete", values()[0])
	require.NoError(t, alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}))
	require.Equal(t, "compact,delete", values()[0], "no value twice")
	require.NoError(t, alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("COMPACT")}))
	require.Equal(t, "delete", values()[0])
	require.ErrorIs(t, alter(kadm.AlterConfig{Op: kadm.SubtractConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}),
		kerr.InvalidConfig, "an empty list")
	require.ErrorIs(t, alter(kadm.AlterConfig{Op: kadm.AppendConfig, Name: "delete.retention.ms", Value: kmsg.StringPtr("1")}),
		kerr.InvalidConfig, "not a list")
	require.NoError(t, alter(kadm.AlterConfig{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("delete, compact")}))
	require.Equal(t, "compact,delete", values()[0])

	// Values, Kafka's "no limit", resets, and refusals.
	require.NoError(t, alter(
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "max.compaction.lag.ms", Value: kmsg.StringPtr("9223372036854775807")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.cleanable.dirty.ratio", Value: kmsg.StringPtr("0")},
		kadm.AlterConfig{Op: kadm.SetConfig, Name: "min.compaction.lag.ms", Value: kmsg.StringPtr("7200000")},
		kadm.AlterConfig{Op: kadm.DeleteConfig, Name: "delete.retention.ms"},
	))
	require.Equal(t, []string{"compact,delete", "0.0", "7200000", "9223372036854775807", "86400000"}, values())
	info, err = b.DescribeTopic("t")
	require.NoError(t, err)
	require.Zero(t, info.Config.MaxCompactionLag, "no limit")
	require.Equal(t, stream.DefaultDeleteRetention, info.Config.DeleteRetention)
	d = describe()
	require.Equal(t, kmsg.ConfigSourceDefaultConfig, d["max.compaction.lag.ms"].Source)
	require.Equal(t, kmsg.ConfigSourceDefaultConfig, d["delete.retention.ms"].Source)

	for _, bad := range []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "min.cleanable.dirty.ratio", Value: kmsg.StringPtr("1.5")},
		{Op: kadm.SetConfig, Name: "min.cleanable.dirty.ratio", Value: kmsg.StringPtr("NaN")},
		{Op: kadm.SetConfig, Name: "min.compaction.lag.ms", Value: kmsg.StringPtr("-1")},
		{Op: kadm.SetConfig, Name: "max.compaction.lag.ms", Value: kmsg.StringPtr("0")},
		{Op: kadm.SetConfig, Name: "delete.retention.ms", Value: kmsg.StringPtr("soon")},
		{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kmsg.StringPtr("compact,keep")},
	} {
		require.ErrorIs(t, alter(bad), kerr.InvalidConfig, "%s=%s", bad.Name, *bad.Value)
	}
	resp, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
		{Op: kadm.SetConfig, Name: "max.compaction.lag.ms", Value: kmsg.StringPtr("3600000")},
	}, "t")
	require.NoError(t, err)
	require.ErrorIs(t, resp[0].Err, kerr.InvalidConfig)
	require.Contains(t, resp[0].ErrMessage, "conflict topic config setting min.compaction.lag.ms")
	require.Equal(t, []string{"compact,delete", "0.0", "7200000", "9223372036854775807", "86400000"}, values(), "refusals changed nothing")

	// The legacy AlterConfigs sets the whole state.
	state, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "cleanup.policy", Value: kmsg.StringPtr("compact")}}, "t")
	require.NoError(t, err)
	require.NoError(t, state[0].Err)
	require.Equal(t, []string{"compact", "0.5", "0", "9223372036854775807", "86400000"}, values())
}
