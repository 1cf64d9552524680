package listener

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFrame is a request frame of key and version with body as it is.
func rawFrame(key, version int16, body []byte) []byte {
	f := make([]byte, 14, 14+len(body))
	binary.BigEndian.PutUint32(f, uint32(10+len(body)))
	binary.BigEndian.PutUint16(f[4:], uint16(key))
	binary.BigEndian.PutUint16(f[6:], uint16(version))
	binary.BigEndian.PutUint32(f[8:], 1)
	binary.BigEndian.PutUint16(f[12:], 0xffff) // no client id
	return append(f, body...)
}

func TestServerStats(t *testing.T) {
	s := startServer(t, openBroker(t, nil), &Options{MaxConnections: 1})
	st := s.Stats()
	require.Len(t, st.Requests, len(apis), "every served API, counted or not")
	require.Equal(t, APIStats{}, st.Requests["Produce"])
	require.Zero(t, st.ConnectionsAccepted)

	a := dialRaw(t, s)
	for range 2 {
		require.Zero(t, a.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse).ErrorCode)
	}
	st = s.Stats()
	require.Equal(t, 1, st.ConnectionsOpen)
	require.Equal(t, int64(1), st.ConnectionsAccepted)
	require.Equal(t, APIStats{Requests: 2}, st.Requests["ApiVersions"])

	// Over MaxConnections: refused.
	b := dialRaw(t, s)
	b.send(kmsg.NewPtrApiVersionsRequest())
	b.requireClosed()

	// A Metadata request whose body does not parse closes its connection:
	// a request of the API, and an error.
	meta := kmsg.Metadata.Int16()
	a.write(rawFrame(meta, apis[meta].max, []byte{0xff}))
	a.requireClosed()
	require.Eventually(t, func() bool { return s.Stats().ConnectionsOpen == 0 }, 10*time.Second, time.Millisecond)

	// A version not served is no API's request.
	c := dialRaw(t, s)
	c.write(rawFrame(meta, apis[meta].max+1, nil))
	c.requireClosed()
	require.Eventually(t, func() bool { return s.Stats().ConnectionsOpen == 0 }, 10*time.Second, time.Millisecond)

	st = s.Stats()
	require.Equal(t, int64(2), st.ConnectionsAccepted)
	require.Equal(t, int64(1), st.ConnectionsRefused)
	require.Equal(t, int64(1), st.Unsupported)
	require.Equal(t, APIStats{Requests: 2}, st.Requests["ApiVersions"])
	require.Equal(t, APIStats{Requests: 1, Errors: 1}, st.Requests["Metadata"])
	for name, api := range st.Requests {
		if name != "ApiVersions" && name != "Metadata" {
			require.Zero(t, api, name)
		}
	}
}
