package listener

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"

	"github.com/xdg-go/scram"
)

// SASL mechanisms served.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// DefaultSCRAMIterations is the PBKDF2 iteration count NewSCRAMCredentials
// uses: kafka-configs' default and the minimum Kafka accepts.
const DefaultSCRAMIterations = 4096

// SASL configures authentication: each non-nil field enables one
// mechanism. With SASL set, a connection may send nothing but ApiVersions,
// SaslHandshake and SaslAuthenticate until it has authenticated, and a
// failed authentication closes it. SASL PLAIN sends the password in the
// clear: use it over TLS (Options.TLS) off the loopback interface.
type SASL struct {
	// Plain enables PLAIN: it reports whether password is user's.
	// PlainUsers builds one from a map, comparing in constant time.
	Plain func(user, password string) bool
	// SCRAMSHA256 enables SCRAM-SHA-256: it returns user's stored
	// credentials (derived with SHA-256: NewSCRAMCredentials), false if
	// the user has none. SCRAMUsers builds one from a map.
	SCRAMSHA256 func(user string) (scram.StoredCredentials, bool)
	// SCRAMSHA512 enables SCRAM-SHA-512, as SCRAMSHA256 does SHA-256.
	SCRAMSHA512 func(user string) (scram.StoredCredentials, bool)
}

// mechanisms lists the mechanisms enabled, as SaslHandshake names them.
func (s *SASL) mechanisms() []string {
	var m []string
	if s.Plain != nil {
		m = append(m, MechanismPlain)
	}
	if s.SCRAMSHA256 != nil {
		m = append(m, MechanismSCRAMSHA256)
	}
	if s.SCRAMSHA512 != nil {
		m = append(m, MechanismSCRAMSHA512)
	}
	return m
}

// PlainUsers returns a SASL.Plain checking passwords against a copy of
// passwords (user to password), in constant time.
func PlainUsers(passwords map[string]string) func(user, password string) bool {
	passwords = maps.Clone(passwords)
	return func(user, password string) bool {
		want, ok := passwords[user]
		// Compare even for an unknown user, so timing tells nothing.
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
		return ok && eq
	}
}

// SCRAMUsers returns a SASL.SCRAMSHA256 or SCRAMSHA512 looking users up in
// a copy of creds.
func SCRAMUsers(creds map[string]scram.StoredCredentials) func(user string) (scram.StoredCredentials, bool) {
	creds = maps.Clone(creds)
	return func(user string) (scram.StoredCredentials, bool) {
		c, ok := creds[user]
		return c, ok
	}
}

// NewSCRAMCredentials derives what a server stores for a password under
// mechanism (MechanismSCRAMSHA256 or MechanismSCRAMSHA512): a random salt,
// DefaultSCRAMIterations, and the keys derived from them, never the
// password itself. The password is normalized with SASLprep, as clients do.
func NewSCRAMCredentials(mechanism, password string) (scram.StoredCredentials, error) {
	hash, err := scramHash(mechanism)
	if err != nil {
		return scram.StoredCredentials{}, err
	}
	client, err := hash.NewClient("", password, "")
	if err != nil {
		return scram.StoredCredentials{}, fmt.Errorf("listener: SCRAM password: %w", err)
	}
	salt := make([]byte, 24)
	rand.Read(salt) // never fails (crypto/rand)
	return client.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: DefaultSCRAMIterations})
}

func scramHash(mechanism string) (scram.HashGeneratorFcn, error) {
	switch mechanism {
	case MechanismSCRAMSHA256:
		return scram.SHA256, nil
	case MechanismSCRAMSHA512:
		return scram.SHA512, nil
	}
	return nil, fmt.Errorf("listener: %q is not a SCRAM mechanism (%s or %s)", mechanism, MechanismSCRAMSHA256, MechanismSCRAMSHA512)
}

// saslServer is a Server's SASL configuration, built once.
type saslServer struct {
	conf     SASL
	mechs    []string
	scram256 *scram.Server
	scram512 *scram.Server
}

var errUnknownUser = errors.New("unknown user")

func newSASLServer(conf *SASL) (*saslServer, error) {
	s := &saslServer{conf: *conf, mechs: conf.mechanisms()}
	if len(s.mechs) == 0 {
		return nil, fmt.Errorf("%w: SASL enables no mechanism", ErrInvalidOptions)
	}
	lookup := func(f func(string) (scram.StoredCredentials, bool)) scram.CredentialLookup {
		return func(user string) (scram.StoredCredentials, error) {
			c, ok := f(user)
			if !ok {
				return c, errUnknownUser
			}
			return c, nil
		}
	}
	var err error
	if conf.SCRAMSHA256 != nil {
		if s.scram256, err = scram.SHA256.NewServer(lookup(conf.SCRAMSHA256)); err != nil {
			return nil, err
		}
	}
	if conf.SCRAMSHA512 != nil {
		if s.scram512, err = scram.SHA512.NewServer(lookup(conf.SCRAMSHA512)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *saslServer) enabled(mechanism string) bool {
	for _, m := range s.mechs {
		if m == mechanism {
			return true
		}
	}
	return false
}

// errAuthFailed marks a failed SASL authentication; the connection closes.
var errAuthFailed = errors.New("SASL authentication failed")

// saslStep feeds one client token to the exchange the handshake chose and
// returns the token to answer with. done is set once the client has
// authenticated (c.auth.user is then set). An error wrapping errAuthFailed
// means the credentials were refused; its text is for the log, not the
// client (it may say whether the user exists).
func (c *conn) saslStep(token []byte) (answer []byte, done bool, err error) {
	a := &c.auth
	switch a.mechanism {
	case MechanismPlain:
		// RFC 4616: authzid NUL authcid NUL passwd.
		parts := bytes.Split(token, []byte{0})
		if len(parts) != 3 {
			return nil, false, fmt.Errorf("%w: malformed PLAIN message", errAuthFailed)
		}
		authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
		if authz != "" && authz != user {
			return nil, false, fmt.Errorf("%w: user %q may not act as %q", errAuthFailed, user, authz)
		}
		a.attempted = user
		if !c.s.sasl.conf.Plain(user, pass) {
			return nil, false, fmt.Errorf("%w: invalid credentials", errAuthFailed)
		}
		a.user = user
		return nil, true, nil
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		if a.scram == nil {
			srv := c.s.sasl.scram256
			if a.mechanism == MechanismSCRAMSHA512 {
				srv = c.s.sasl.scram512
			}
			a.scram = srv.NewConversation()
		}
		answer, err := a.scram.Step(string(token))
		if u := a.scram.Username(); u != "" {
			a.attempted = u
		}
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", errAuthFailed, err)
		}
		if !a.scram.Done() {
			return []byte(answer), false, nil
		}
		if !a.scram.Valid() {
			return nil, false, fmt.Errorf("%w: invalid credentials", errAuthFailed)
		}
		if z := a.scram.AuthzID(); z != "" && z != a.scram.Username() {
			return nil, false, fmt.Errorf("%w: user %q may not act as %q", errAuthFailed, a.scram.Username(), z)
		}
		a.user, a.scram = a.scram.Username(), nil
		return []byte(answer), true, nil
	}
	return nil, false, fmt.Errorf("%w: no mechanism chosen", errAuthFailed)
}

// authFailed logs a failed authentication; the caller closes the
// connection.
func (c *conn) authFailed(err error) {
	c.s.log.Warn("listener: authentication failed", "remote", c.remote, "client_id", c.clientID,
		"mechanism", c.auth.mechanism, "user", c.auth.attempted, "reason", err)
}

// authenticated logs a successful authentication.
func (c *conn) authenticated() {
	c.s.log.Info("listener: authenticated", "remote", c.remote, "client_id", c.clientID,
		"mechanism", c.auth.mechanism, "user", c.auth.user)
}

// handleRawToken answers one bare SASL token, the framing that follows a
// v0 SaslHandshake (kafka-python 2.0 uses it): a size-prefixed token in,
// a size-prefixed token out, no request header. Failure closes the
// connection with no answer, as Kafka's broker does.
func (c *conn) handleRawToken(token []byte) ([]byte, error) {
	answer, done, err := c.saslStep(token)
	if err != nil {
		c.authFailed(err)
		return nil, err
	}
	if done {
		c.auth.raw = false
		c.authenticated()
	}
	out := make([]byte, 4+len(answer))
	out[0], out[1], out[2], out[3] = byte(len(answer)>>24), byte(len(answer)>>16), byte(len(answer)>>8), byte(len(answer))
	copy(out[4:], answer)
	return out, nil
}
