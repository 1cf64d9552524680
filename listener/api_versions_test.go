package listener

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestApiVersionsListsWhatIsServed(t *testing.T) {
	s := startServer(t, openBroker(t, nil), nil)
	cl := newClient(t, s)
	for _, v := range []int16{0, 1, 2, 3} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "test", "1"
		resp, err := req.RequestWith(context.Background(), cl)
		require.NoError(t, err, "v%d", v)
		require.Zero(t, resp.ErrorCode)
		require.Len(t, resp.ApiKeys, len(apis))
		for _, k := range resp.ApiKeys {
			a := apis[k.ApiKey]
			require.Equal(t, a.min, k.MinVersion)
			require.Equal(t, a.max, k.MaxVersion)
		}
	}
}
