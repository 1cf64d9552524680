// Package errs holds the sentinel errors that the engine's internal packages
// return and package stream exports under its own names (ErrClosed is
// errs.ErrClosed): one value for each failure, whichever layer finds it, so
// callers test for it with errors.Is and a layer maps only what means
// something else above it (a log closed under a deleted topic, say).
// What each one means is documented where package stream exports it.
package errs

import (
	"errors"

	"github.com/embedstream/stream/batch"
)

var (
	// ErrClosed is stream.ErrClosed.
	ErrClosed = errors.New("stream: closed")
	// ErrLocked is stream.ErrLocked.
	ErrLocked = errors.New("stream: directory is locked by another broker")
	// ErrReadOnly is stream.ErrReadOnly.
	ErrReadOnly = errors.New("stream: broker is read-only")
	// ErrInvalidConfig is stream.ErrInvalidConfig.
	ErrInvalidConfig = errors.New("stream: invalid configuration")
	// ErrRecordTooLarge is stream.ErrRecordTooLarge.
	ErrRecordTooLarge = errors.New("stream: record too large")
	// ErrOffsetOutOfRange is stream.ErrOffsetOutOfRange.
	ErrOffsetOutOfRange = errors.New("stream: offset out of range")
	// ErrSyncFailed is stream.ErrSyncFailed.
	ErrSyncFailed = errors.New("stream: fsync failed; partition refuses writes")
	// ErrInvalidArgument is stream.ErrInvalidArgument.
	ErrInvalidArgument = errors.New("stream: invalid argument")
	// ErrStaleGeneration is stream.ErrStaleGeneration.
	ErrStaleGeneration = errors.New("stream: stale group generation")
	// ErrRebalanceInProgress is stream.ErrRebalanceInProgress.
	ErrRebalanceInProgress = errors.New("stream: rebalance in progress")
	// ErrFenced is stream.ErrFenced.
	ErrFenced = errors.New("stream: fenced by a member with the same instance id")
	// ErrNotAssigned is stream.ErrNotAssigned.
	ErrNotAssigned = errors.New("stream: partition not assigned to this consumer")
	// ErrMetadataUnavailable is stream.ErrMetadataUnavailable.
	ErrMetadataUnavailable = errors.New("stream: meta.db cannot be read")
	// ErrGroupNotEmpty is stream.ErrGroupNotEmpty.
	ErrGroupNotEmpty = errors.New("stream: group has members")
	// ErrOutOfOrderSequence is stream.ErrOutOfOrderSequence.
	ErrOutOfOrderSequence = errors.New("stream: out of order sequence number")
	// ErrInvalidProducerEpoch is stream.ErrInvalidProducerEpoch.
	ErrInvalidProducerEpoch = errors.New("stream: invalid producer epoch")

	// ErrCorrupt is stream.ErrCorrupt, the batch codec's own.
	ErrCorrupt = batch.ErrCorrupt
	// ErrUnsupported is stream.ErrUnsupported, the batch codec's own.
	ErrUnsupported = batch.ErrUnsupported
)
