package listener

import (
	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.AddOffsetsToTxn, 0, 4, handleAddOffsetsToTxn) }

// handleAddOffsetsToTxn opens the producer's transaction for a group's
// offsets (TxnOffsetCommit then stages them). The offsets live in
// meta.db, not in a partition of __consumer_offsets, so no partition is
// added: the transaction is opened as AddPartitionsToTxn with none would.
func handleAddOffsetsToTxn(c *conn, req *kmsg.AddOffsetsToTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
	case !c.allowed(opWrite, resTransactionalID, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
	case !c.allowed(opRead, resGroup, req.Group):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
	case req.Group == "":
		resp.ErrorCode = errorCode(stream.ErrInvalidGroup)
	default:
		err := c.s.broker.AddTxnPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, nil)
		resp.ErrorCode = txnErrorCode(err, req.Version, 2)
	}
	return resp, nil
}
