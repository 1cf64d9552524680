package listener

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// v0 is followed by bare SASL tokens (kafka-python 2.0); v1 by
// SaslAuthenticate requests (librdkafka, franz-go, Java, sarama).
func init() { serve(kmsg.SASLHandshake, 0, 1, handleSASLHandshake) }

// handleSASLHandshake chooses the connection's SASL mechanism. A second
// handshake, or one on a server without SASL, is ILLEGAL_SASL_STATE (there
// is no re-authentication: sessions have no lifetime); an unknown mechanism
// is UNSUPPORTED_SASL_MECHANISM with the list of those served. Both close
// the connection once answered, as Kafka's broker does.
func handleSASLHandshake(c *conn, req *kmsg.SASLHandshakeRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	switch {
	case c.s.sasl == nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfter = fmt.Errorf("%w: SaslHandshake on a listener without SASL", errAuthFailed)
	case c.auth.mechanism != "":
		resp.ErrorCode = kerr.IllegalSaslState.Code
		c.closeAfter = fmt.Errorf("%w: a second SaslHandshake", errAuthFailed)
	case !c.s.sasl.enabled(req.Mechanism):
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		resp.SupportedMechanisms = c.s.sasl.mechs
		c.closeAfter = fmt.Errorf("%w: mechanism %q not enabled", errAuthFailed, req.Mechanism)
	default:
		c.auth.mechanism = req.Mechanism
		c.auth.raw = req.Version == 0
		resp.SupportedMechanisms = c.s.sasl.mechs
	}
	if c.closeAfter != nil {
		c.authFailed(c.closeAfter)
	}
	return resp, nil
}
