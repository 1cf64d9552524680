package listener

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { serve(kmsg.SASLAuthenticate, 0, 2, handleSASLAuthenticate) }

// handleSASLAuthenticate carries one step of the exchange the v1 handshake
// chose. A refusal is SASL_AUTHENTICATION_FAILED, with a message that does
// not say whether the user exists, and closes the connection once
// answered; a SaslAuthenticate without a v1 handshake before it is
// ILLEGAL_SASL_STATE and closes it too. Sessions have no lifetime (v1's
// SessionLifetimeMillis is 0): a connection stays authenticated until it
// closes.
func handleSASLAuthenticate(c *conn, req *kmsg.SASLAuthenticateRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c.s.sasl == nil || c.auth.mechanism == "" || c.auth.raw || c.auth.user != "" {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		msg := "SaslAuthenticate without a v1 SaslHandshake before it"
		if c.auth.user != "" {
			msg = "SaslAuthenticate on an authenticated connection"
		}
		resp.ErrorMessage = &msg
		c.closeAfter = fmt.Errorf("%w: %s", errAuthFailed, msg)
		c.authFailed(c.closeAfter)
		return resp, nil
	}
	answer, done, err := c.saslStep(req.SASLAuthBytes)
	if err != nil {
		c.authFailed(err)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := fmt.Sprintf("Authentication failed: invalid credentials with SASL mechanism %s", c.auth.mechanism)
		resp.ErrorMessage = &msg
		c.closeAfter = err
		return resp, nil
	}
	resp.SASLAuthBytes = answer
	if done {
		c.authenticated()
	}
	return resp, nil
}
