package listener

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.InitProducerID, 0, 4, handleInitProducerID) }

// handleInitProducerID gives an idempotent producer a new producer ID at
// epoch 0. As Kafka's coordinator does for a producer without a
// transactional ID, it allocates a fresh one even when a v3+ client sends
// its current ID and epoch (KIP-360): the new ID starts new sequences on
// every partition. A transactional ID is refused until transactions exist.
func handleInitProducerID(c *conn, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		c.s.log.Warn("listener: InitProducerId with a transactional ID refused: transactions are not supported yet",
			"remote", c.remote, "client_id", c.clientID, "transactional_id", *req.TransactionalID)
		resp.ErrorCode = kerr.InvalidRequest.Code
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
