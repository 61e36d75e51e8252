package auth_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/status"
)

// FuzzAuthenticate feeds arbitrary header values to Authenticate: it must
// never panic, every refusal is UNAUTHENTICATED, and every acceptance
// names a subject.
func FuzzAuthenticate(f *testing.F) {
	a, k := newAuthenticator(f)
	f.Add("", "")
	f.Add("Bearer "+ciSecret, "")
	f.Add("", billingSecret)
	f.Add("Bearer "+ciSecret, billingSecret)
	f.Add("Basic abc", "")
	f.Add("Bearer", "")
	f.Add("Bearer a.b.c", "")
	f.Add("Bearer "+sign(f, jwt.SigningMethodHS256, k.secret, claims(issHS, "aud", "api", "roles", []string{"admin"})), "")
	f.Add("Bearer "+sign(f, jwt.SigningMethodRS256, k.rsa, claims(issRS, "roles", "a b")), "")
	f.Add("Bearer "+sign(f, jwt.SigningMethodES256, k.ec, claims(issES)), "")
	f.Add("Bearer "+sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(issHS)), "")
	f.Add("Bearer "+rawToken(`{"alg":"RS256","kid":[1]}`, `{"iss":"https://rs.example","exp":"x","aud":[1]}`, ""), "")

	f.Fuzz(func(t *testing.T, authorization, apiKey string) {
		p, present, err := a.Authenticate(authorization, apiKey)
		switch {
		case err != nil:
			if code := status.CodeOf(err); code != socket.CodeUnauthenticated {
				t.Fatalf("code = %q, want UNAUTHENTICATED (err: %v)", code, err)
			}
			if !present {
				t.Fatalf("refused with present = false: %v", err)
			}
		case present && p.Subject == "":
			t.Fatalf("accepted without a subject: %+v", p)
		case !present && (p.Subject != "" || p.Roles != nil):
			t.Fatalf("principal %+v without credentials", p)
		}
	})
}
