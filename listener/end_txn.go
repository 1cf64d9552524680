package listener

import (
	"errors"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Up to v4: v5 (KIP-890 part 2) bumps the epoch at every transaction, the
// transaction.version 2 flow, which is not advertised.
func init() { serve(kmsg.EndTxn, 0, 4, handleEndTxn) }

// handleEndTxn commits or aborts the producer's transaction
// (stream.Broker.EndTxn), answering once the markers are written. Ending
// one that is not open is INVALID_TXN_STATE, unless it just ended the same
// way (a retry). A commit the coordinator had to turn into an abort (a
// write of the transaction failed, a staged member lost its partitions)
// is TRANSACTION_ABORTABLE from v4, and UNKNOWN_SERVER_ERROR before it,
// which franz-go and librdkafka both treat as "abort, then go on": the
// client aborts (a no-op answered NONE) and its consumer rewinds.
func handleEndTxn(c *conn, req *kmsg.EndTxnRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	switch {
	case req.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	case !c.allowed(opWrite, resTransactionalID, req.TransactionalID):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	err := c.s.broker.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
	switch {
	case errors.Is(err, stream.ErrTxnAborted):
		c.s.log.Warn("listener: transaction aborted instead of committed", "transactional_id", req.TransactionalID,
			"remote", c.remote, "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		if req.Version >= 4 {
			resp.ErrorCode = kerr.TransactionAbortable.Code
		}
	default:
		resp.ErrorCode = txnErrorCode(err, req.Version, 2)
		if resp.ErrorCode == kerr.UnknownServerError.Code {
			c.s.log.Error("listener: EndTxn failed", "transactional_id", req.TransactionalID, "remote", c.remote, "err", err)
		}
	}
	return resp, nil
}
