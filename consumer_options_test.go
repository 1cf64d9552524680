package stream

// ConsumerOptions: validation of Subscribe input, defaults and balancers.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------------
// Subscribe and bad input

func TestSubscribeRejectsBadInput(t *testing.T) {
	b := openBroker(t, "", nil)
	require.NoError(t, b.CreateTopic("t", TopicConfig{}))

	_, err := b.Subscribe("", []string{"t"}, nil)
	require.ErrorIs(t, err, ErrInvalidGroup)
	_, err = b.Subscribe("g", nil, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.Subscribe("g", []string{}, nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = b.Subscribe("g", []string{"nope"}, nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.Subscribe("g", []string{"t", "nope"}, nil)
	require.ErrorIs(t, err, ErrTopicNotFound)
	_, err = b.Subscribe("g", []string{"bad/name"}, nil)
	require.ErrorIs(t, err, ErrInvalidTopic)
	for name, o := range map[string]ConsumerOptions{
		"reset too big":       {Reset: ResetNone + 1},
		"reset negative":      {Reset: -1},
		"auto commit every":   {AutoCommitEvery: -time.Second},
		"max poll records":    {MaxPollRecords: -1},
		"min bytes":           {MinBytes: -1},
		"max wait":            {MaxWait: -time.Second},
		"session timeout":     {SessionTimeout: -time.Second},
		"max poll interval":   {MaxPollInterval: -time.Second},
		"everything negative": {MaxPollRecords: -1, MinBytes: -1},
	} {
		_, err := b.Subscribe("g", []string{"t"}, &o)
		require.ErrorIs(t, err, ErrInvalidConfig, name)
	}
	require.Empty(t, b.Groups(), "a refused Subscribe joins nothing")
	_, err = b.DescribeTopic("nope")
	require.ErrorIs(t, err, ErrTopicNotFound, "a refused Subscribe creates no topic")

	// All members of a group use one kind of balancer.
	c := cgSubscribe(t, b, "g", []string{"t"}, nil)
	_, err = b.Subscribe("g", []string{"t"}, &ConsumerOptions{Balancer: CooperativeStickyBalancer{}})
	require.ErrorIs(t, err, ErrInvalidConfig)
	require.NoError(t, c.Close())
	c2 := cgSubscribe(t, b, "g", []string{"t"}, &ConsumerOptions{Balancer: CooperativeStickyBalancer{}})
	require.NoError(t, c2.Close(), "once the group is empty another balancer may take over")

	require.NoError(t, b.Close())
	_, err = b.Subscribe("g", []string{"t"}, nil)
	require.ErrorIs(t, err, ErrClosed)
}
