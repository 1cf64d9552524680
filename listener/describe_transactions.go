package listener

import (
	"github.com/embedstream/stream"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.DescribeTransactions, 0, 0, handleDescribeTransactions) }

// handleDescribeTransactions describes transactional IDs
// (stream.Broker.Transactions): producer ID and epoch, state (Empty,
// Ongoing, CompleteCommit, CompleteAbort: the coordinator ends a
// transaction synchronously, so the Prepare states are never seen), the
// timeout, and the ongoing transaction's start and partitions (those the
// client may describe). An ID the broker does not know is
// TRANSACTIONAL_ID_NOT_FOUND.
func handleDescribeTransactions(c *conn, req *kmsg.DescribeTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	byID := map[string]stream.TxnInfo{}
	for _, t := range c.s.broker.Transactions() {
		byID[t.ID] = t
	}
	for _, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.ProducerEpoch, st.StartTimestamp = id, -1, -1, -1
		t, ok := byID[id]
		switch {
		case !c.allowed(opDescribe, resTransactionalID, id):
			st.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case !ok:
			st.ErrorCode = kerr.TransactionalIDNotFound.Code
		default:
			st.State, st.TimeoutMillis = string(t.State), int32(t.Timeout.Milliseconds())
			st.ProducerID, st.ProducerEpoch = t.ProducerID, t.Epoch
			if !t.Started.IsZero() {
				st.StartTimestamp = t.Started.UnixMilli()
			}
			for _, tp := range t.Partitions { // sorted by topic
				if !c.allowed(opDescribe, resTopic, tp.Topic) {
					continue
				}
				if n := len(st.Topics); n == 0 || st.Topics[n-1].Topic != tp.Topic {
					rt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
					rt.Topic = tp.Topic
					st.Topics = append(st.Topics, rt)
				}
				rt := &st.Topics[len(st.Topics)-1]
				rt.Partitions = append(rt.Partitions, tp.Partition)
			}
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
