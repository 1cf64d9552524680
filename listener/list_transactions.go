package listener

import (
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.ListTransactions, 0, 2, handleListTransactions) }

// txnStates are the state names Kafka's coordinator knows: a filter
// naming another is answered in UnknownStateFilters.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort",
	"Dead", "PrepareEpochFence"}

// handleListTransactions lists the transactional IDs the client may
// describe, filtered by state, producer ID, how long the ongoing
// transaction has run (v1+) and an RE2 pattern on the ID (v2+,
// INVALID_REGULAR_EXPRESSION if it does not compile). Empty filters
// match everything.
func handleListTransactions(c *conn, req *kmsg.ListTransactionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	var pattern *regexp.Regexp
	if req.Version >= 2 && req.TransactionalIDPattern != nil && *req.TransactionalIDPattern != "" {
		var err error
		if pattern, err = regexp.Compile(*req.TransactionalIDPattern); err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp, nil
		}
	}
	for _, s := range req.StateFilters {
		if !slices.Contains(txnStates, s) {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
		}
	}
	now := time.Now()
	for _, t := range c.s.broker.Transactions() {
		switch {
		case len(req.StateFilters) > 0 && !slices.Contains(req.StateFilters, string(t.State)),
			len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, t.ProducerID),
			req.Version >= 1 && req.DurationFilterMillis >= 0 &&
				(t.Started.IsZero() || now.Sub(t.Started) < time.Duration(req.DurationFilterMillis)*time.Millisecond),
			pattern != nil && !pattern.MatchString(t.ID),
			!c.allowed(opDescribe, resTransactionalID, t.ID):
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = t.ID, t.ProducerID, string(t.State)
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
