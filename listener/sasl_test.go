package listener

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	kscram "github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/xdg-go/scram"
)

// testSASL knows alice (every mechanism) and bob (PLAIN only).
func testSASL(t testing.TB) *SASL {
	t.Helper()
	c256, err := NewSCRAMCredentials(MechanismSCRAMSHA256, "alice-secret")
	require.NoError(t, err)
	c512, err := NewSCRAMCredentials(MechanismSCRAMSHA512, "alice-secret")
	require.NoError(t, err)
	return &SASL{
		Plain:       PlainUsers(map[string]string{"alice": "alice-secret", "bob": "bob-secret"}),
		SCRAMSHA256: SCRAMUsers(map[string]scram.StoredCredentials{"alice": c256}),
		SCRAMSHA512: SCRAMUsers(map[string]scram.StoredCredentials{"alice": c512}),
	}
}

// probe asks s, through cl, whether its user may describe the cluster.
func probe(t *testing.T, cl *kgo.Client) (*kmsg.DescribeACLsResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return authorizeReq(OpDescribe, ResourceCluster, "kafka-cluster").RequestWith(ctx, cl)
}

func TestSASLMechanismsWithFranzGo(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{
		Logger: log, SASL: testSASL(t),
		ACLs: []ACL{{Principal: "*", Resource: ResourceCluster, Operations: []Operation{OpDescribe}}},
	})
	for _, tc := range []struct {
		name string
		good sasl.Mechanism
		bad  sasl.Mechanism
	}{
		{MechanismPlain, plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(), plain.Auth{User: "alice", Pass: "wrong"}.AsMechanism()},
		{MechanismSCRAMSHA256, kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), kscram.Auth{User: "alice", Pass: "wrong"}.AsSha256Mechanism()},
		{MechanismSCRAMSHA512, kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(), kscram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := probe(t, newClient(t, s, kgo.SASL(tc.good)))
			require.NoError(t, err)
			require.Zero(t, resp.ErrorCode)
			requireLogged(t, lb, "listener: authenticated", "mechanism="+tc.name, "user=alice")

			_, err = probe(t, newClient(t, s, kgo.SASL(tc.bad), kgo.RequestRetries(0)))
			require.ErrorIs(t, err, kerr.SaslAuthenticationFailed)
			requireLogged(t, lb, "listener: authentication failed", "mechanism="+tc.name, "user=alice")
		})
	}
	// bob has no SCRAM credentials: refused like a wrong password.
	_, err := probe(t, newClient(t, s, kgo.SASL(kscram.Auth{User: "bob", Pass: "bob-secret"}.AsSha256Mechanism()), kgo.RequestRetries(0)))
	require.ErrorIs(t, err, kerr.SaslAuthenticationFailed)
	requireLogged(t, lb, "listener: authentication failed", "mechanism="+MechanismSCRAMSHA256, "unknown user")
	requireServing(t, s)
}

func TestSASLOverTLS(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{
		Logger: log, TLS: serverTLS, SASL: testSASL(t), SuperUsers: []string{"alice"},
	})
	resp, err := probe(t, newClient(t, s, kgo.DialTLSConfig(clientTLS),
		kgo.SASL(kscram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism())))
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
	requireLogged(t, lb, "listener: authenticated", "mechanism="+MechanismSCRAMSHA512)

	_, err = probe(t, newClient(t, s, kgo.DialTLSConfig(clientTLS), kgo.RequestRetries(0),
		kgo.SASL(plain.Auth{User: "alice", Pass: "nope"}.AsMechanism())))
	require.ErrorIs(t, err, kerr.SaslAuthenticationFailed)
}

func TestTLS(t *testing.T) {
	serverTLS, clientTLS := selfSignedTLS(t)
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, TLS: serverTLS})
	cl := newClient(t, s, kgo.DialTLSConfig(clientTLS))
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)

	// A plaintext client fails the handshake: that connection only closes.
	rc := dialRaw(t, s)
	rc.send(kmsg.NewPtrApiVersionsRequest())
	rc.requireClosed()
	requireLogged(t, lb, "listener: connection closed", "TLS handshake")
	resp, err = kmsg.NewPtrApiVersionsRequest().RequestWith(context.Background(), cl)
	require.NoError(t, err)
	require.Zero(t, resp.ErrorCode)
}

// kafka-python 2.0 sends a v0 SaslHandshake, then bare size-prefixed
// tokens, and takes an empty token back as PLAIN's success.
func TestSASLHandshakeV0BareTokens(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, SASL: testSASL(t), SuperUsers: []string{"alice"}})
	handshake := func(rc *rawConn, mech string) {
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Version, req.Mechanism = 0, mech
		resp := rc.roundTrip(req).(*kmsg.SASLHandshakeResponse)
		require.Zero(t, resp.ErrorCode)
		require.Equal(t, []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}, resp.SupportedMechanisms)
	}
	token := func(rc *rawConn, b []byte) ([]byte, error) {
		rc.write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		rc.write(b)
		return rc.readFrame()
	}
	authorized := func(rc *rawConn) {
		resp := rc.roundTrip(authorizeReq(OpDescribe, ResourceCluster, "")).(*kmsg.DescribeACLsResponse)
		require.Zero(t, resp.ErrorCode)
	}

	t.Run("PLAIN", func(t *testing.T) {
		rc := dialRaw(t, s)
		handshake(rc, MechanismPlain)
		answer, err := token(rc, []byte("alice\x00alice\x00alice-secret"))
		require.NoError(t, err)
		require.Empty(t, answer)
		authorized(rc)

		rc = dialRaw(t, s)
		handshake(rc, MechanismPlain)
		_, err = token(rc, []byte("\x00alice\x00wrong"))
		require.Error(t, err) // closed, no answer
		requireLogged(t, lb, "listener: authentication failed", "invalid credentials")
	})
	t.Run("SCRAM-SHA-256", func(t *testing.T) {
		client, err := scram.SHA256.NewClient("alice", "alice-secret", "")
		require.NoError(t, err)
		conv := client.NewConversation()
		rc := dialRaw(t, s)
		handshake(rc, MechanismSCRAMSHA256)
		first, err := conv.Step("")
		require.NoError(t, err)
		serverFirst, err := token(rc, []byte(first))
		require.NoError(t, err)
		final, err := conv.Step(string(serverFirst))
		require.NoError(t, err)
		serverFinal, err := token(rc, []byte(final))
		require.NoError(t, err)
		_, err = conv.Step(string(serverFinal)) // checks the server's signature
		require.NoError(t, err)
		require.True(t, conv.Valid())
		authorized(rc)
	})
}

func TestRequestsBeforeAuthentication(t *testing.T) {
	log, lb := newLogger()
	s := startServer(t, openBroker(t, nil), &Options{Logger: log, SASL: testSASL(t), SuperUsers: []string{"alice"}})

	t.Run("only ApiVersions and SASL before authenticating", func(t *testing.T) {
		rc := dialRaw(t, s)
		resp := rc.roundTrip(kmsg.NewPtrApiVersionsRequest()).(*kmsg.ApiVersionsResponse)
		require.Zero(t, resp.ErrorCode)
		rc.send(authorizeReq(OpDescribe, ResourceCluster, ""))
		rc.requireClosed()
		requireLogged(t, lb, "listener: connection closed", errUnauthenticated.Error(), "DescribeACLs")
	})
	t.Run("SaslAuthenticate without handshake", func(t *testing.T) {
		rc := dialRaw(t, s)
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 1
		req.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
		resp := rc.roundTrip(req).(*kmsg.SASLAuthenticateResponse)
		require.Equal(t, kerr.IllegalSaslState.Code, resp.ErrorCode)
		rc.requireClosed()
	})
	t.Run("unknown mechanism", func(t *testing.T) {
		rc := dialRaw(t, s)
		req := kmsg.NewPtrSASLHandshakeRequest()
		req.Version, req.Mechanism = 1, "GSSAPI"
		resp := rc.roundTrip(req).(*kmsg.SASLHandshakeResponse)
		require.Equal(t, kerr.UnsupportedSaslMechanism.Code, resp.ErrorCode)
		require.Equal(t, []string{MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512}, resp.SupportedMechanisms)
		rc.requireClosed()
	})
	t.Run("second handshake", func(t *testing.T) {
		rc := dialRaw(t, s)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, MechanismPlain
		require.Zero(t, rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse).ErrorCode)
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version = 2
		auth.SASLAuthBytes = []byte("\x00alice\x00alice-secret")
		ar := rc.roundTrip(auth).(*kmsg.SASLAuthenticateResponse)
		require.Zero(t, ar.ErrorCode)
		require.Zero(t, ar.SessionLifetimeMillis)
		require.Equal(t, kerr.IllegalSaslState.Code, rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse).ErrorCode)
		rc.requireClosed()
	})
	t.Run("handshake without SASL configured", func(t *testing.T) {
		plainServer := startServer(t, openBroker(t, nil), nil)
		rc := dialRaw(t, plainServer)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, MechanismPlain
		require.Equal(t, kerr.IllegalSaslState.Code, rc.roundTrip(hs).(*kmsg.SASLHandshakeResponse).ErrorCode)
		rc.requireClosed()
	})
	requireServing(t, s)
}

func TestNewSCRAMCredentials(t *testing.T) {
	a, err := NewSCRAMCredentials(MechanismSCRAMSHA256, "pw")
	require.NoError(t, err)
	b, err := NewSCRAMCredentials(MechanismSCRAMSHA256, "pw")
	require.NoError(t, err)
	require.Equal(t, DefaultSCRAMIterations, a.Iters)
	require.NotEqual(t, a.Salt, b.Salt, "salts are random")
	require.NotEqual(t, a.StoredKey, b.StoredKey)
	_, err = NewSCRAMCredentials("SCRAM-SHA-1", "pw")
	require.Error(t, err)
}

func TestInvalidOptions(t *testing.T) {
	b := openBroker(t, nil)
	for name, o := range map[string]*Options{
		"ACLs without SASL":        {ACLs: []ACL{{Principal: "alice", Resource: ResourceTopic, Name: "t", Operations: []Operation{OpRead}}}},
		"super users without SASL": {SuperUsers: []string{"alice"}},
		"SASL without mechanism":   {SASL: &SASL{}},
		"ACL without principal":    {SASL: testSASL(t), ACLs: []ACL{{Resource: ResourceTopic, Name: "t", Operations: []Operation{OpRead}}}},
		"ACL without name":         {SASL: testSASL(t), ACLs: []ACL{{Principal: "a", Resource: ResourceTopic, Operations: []Operation{OpRead}}}},
		"ACL without operation":    {SASL: testSASL(t), ACLs: []ACL{{Principal: "a", Resource: ResourceTopic, Name: "t"}}},
		"ACL unknown operation":    {SASL: testSASL(t), ACLs: []ACL{{Principal: "a", Resource: ResourceTopic, Name: "t", Operations: []Operation{42}}}},
		"ACL unknown resource":     {SASL: testSASL(t), ACLs: []ACL{{Principal: "a", Resource: 9, Name: "t", Operations: []Operation{OpRead}}}},
	} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		err = New(b, o).Serve(ln)
		require.True(t, errors.Is(err, ErrInvalidOptions), "%s: %v", name, err)
		_, err = ln.Accept()
		require.Error(t, err, "%s: Serve closes the listener", name)
	}
}
