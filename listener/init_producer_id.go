package listener

import (
	"time"

	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.InitProducerID, 0, 4, handleInitProducerID) }

// handleInitProducerID hands out a producer ID and epoch.
//
// Without a transactional ID (an idempotent producer) it is a new producer
// ID at epoch 0: as Kafka's coordinator does, a fresh one even when a v3+
// client sends its current ID and epoch (KIP-360), which starts new
// sequences on every partition.
//
// With one, it is stream.Broker.InitTransactions: the ID's producer ID at
// its next epoch, which fences every earlier instance. A transaction an
// earlier instance left open is aborted before the answer, not after a
// CONCURRENT_TRANSACTIONS and a retry as Kafka does it, so the new
// instance ends one epoch up, not two (kfake does the same). A v3+ client
// recovering its own ID (KIP-360: its current producer ID and epoch
// given) must name the ID's producer ID (INVALID_PRODUCER_ID_MAPPING for
// an unknown transactional ID) and an epoch not above the ID's; like
// kfake, an older epoch is accepted, so that a client whose epoch a
// restart of the broker bumped recovers. A fenced client does not try:
// PRODUCER_FENCED is fatal to clients.
func handleInitProducerID(c *conn, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = c.initTransactions(req, resp)
		return resp, nil
	}
	if !c.mayProduce() {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	id, epoch, err := c.s.broker.InitProducerID()
	if err != nil {
		code, known := knownErrorCode(err)
		if !known {
			c.s.log.Error("listener: producer ID allocation failed", "remote", c.remote, "err", err)
		}
		resp.ErrorCode = code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, epoch
	return resp, nil
}

// initTransactions is InitProducerId with a transactional ID: it fills in
// resp's producer ID and epoch and returns the error code.
func (c *conn) initTransactions(req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) int16 {
	txnID := *req.TransactionalID
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	switch {
	case txnID == "":
		return kerr.InvalidRequest.Code
	case !c.allowed(opWrite, resTransactionalID, txnID):
		return kerr.TransactionalIDAuthorizationFailed.Code
	case timeout <= 0 || timeout > stream.MaxTxnTimeout:
		// Kafka's transaction.max.timeout.ms is stream.MaxTxnTimeout's 15 minutes.
		return kerr.InvalidTransactionTimeout.Code
	}
	if req.Version >= 3 && req.ProducerID >= 0 {
		if code := c.checkRecovery(txnID, req.ProducerID, req.ProducerEpoch, req.Version); code != 0 {
			return code
		}
	}
	pid, epoch, err := c.s.broker.InitTransactions(txnID, timeout)
	if err != nil {
		code := txnErrorCode(err, req.Version, 4)
		if code == kerr.UnknownServerError.Code {
			c.s.log.Error("listener: InitProducerId failed", "transactional_id", txnID, "remote", c.remote, "err", err)
		}
		return code
	}
	resp.ProducerID, resp.ProducerEpoch = pid, epoch
	return 0
}

// checkRecovery checks a KIP-360 re-initialization's producer ID and
// epoch against what the broker holds for txnID (see handleInitProducerID).
func (c *conn) checkRecovery(txnID string, pid int64, epoch int16, version int16) int16 {
	for _, t := range c.s.broker.Transactions() {
		if t.ID != txnID {
			continue
		}
		if t.ProducerID != pid || epoch > t.Epoch {
			return fencedCode(version, 4)
		}
		return 0
	}
	return kerr.InvalidProducerIDMapping.Code
}
