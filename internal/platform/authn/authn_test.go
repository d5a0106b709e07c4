package authn_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
)

// keys is a KeySource whose key can be replaced or withdrawn, as a rotation
// in the users service does.
type keys struct {
	iss      *authntest.Issuer
	mu       sync.Mutex
	replaced ed25519.PublicKey
	gone     bool
}

func (k *keys) PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case k.gone:
		return nil, fmt.Errorf("kid %q: %w", kid, authn.ErrUnknownKey)
	case k.replaced != nil:
		return k.replaced, nil
	}
	return k.iss.PublicKey(ctx, kid)
}

func mustVerify(t *testing.T, v *authn.Verifier, tok string) *authn.Claims {
	t.Helper()
	c, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func mustRefuse(t *testing.T, v *authn.Verifier, tok, why string) {
	t.Helper()
	if _, err := v.Verify(t.Context(), tok); !errors.Is(err, authn.ErrInvalidToken) {
		t.Fatalf("Verify of %s = %v, want ErrInvalidToken", why, err)
	}
}

// A remembered token skips only the signature check: its time claims are
// checked again on each use, and other bytes are checked in full.
func TestVerifyRemembersTheSignatureOnly(t *testing.T) {
	iss := authntest.New(t)
	v := iss.Verifier()
	now := time.Now()
	v.SetClock(func() time.Time { return now })
	user := authntest.NewUserID()
	tok := iss.TokenAt(t, user, authn.RoleUser, now, 15*time.Minute)

	if c := mustVerify(t, v, tok); c.Subject != user || c.Role != authn.RoleUser {
		t.Fatalf("claims = %+v", c)
	}
	if got := v.Remembered(); got != 1 {
		t.Fatalf("remembered %d tokens, want 1", got)
	}
	c := mustVerify(t, v, tok)
	if c.Subject != user || c.Role != authn.RoleUser {
		t.Fatalf("remembered claims = %+v", c)
	}
	c.Subject = "someone else" // the caller's copy, not the verifier's
	if c := mustVerify(t, v, tok); c.Subject != user {
		t.Fatalf("a caller changed the remembered claims: %+v", c)
	}

	// The same header and claims under another signature.
	forged := tok[:len(tok)-4] + "AAAA"
	if forged == tok {
		forged = tok[:len(tok)-4] + "BBBB"
	}
	mustRefuse(t, v, forged, "a token with another signature")

	now = now.Add(15*time.Minute + time.Minute) // past exp and the leeway
	mustRefuse(t, v, tok, "an expired remembered token")
	if got := v.Remembered(); got != 0 {
		t.Fatalf("an expired token is still remembered (%d)", got)
	}
}

// A remembered token stops verifying as soon as its kid gives another key,
// or none.
func TestVerifyForgetsWhenTheKeyChanges(t *testing.T) {
	k := &keys{iss: authntest.New(t)}
	v := authn.NewVerifier(k)
	tok := k.iss.Token(t, authntest.NewUserID(), authn.RoleAdmin)
	mustVerify(t, v, tok)

	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	k.replaced = other
	k.mu.Unlock()
	mustRefuse(t, v, tok, "a token whose kid now has another key")

	k.mu.Lock()
	k.replaced, k.gone = nil, true
	k.mu.Unlock()
	mustRefuse(t, v, tok, "a token whose key was withdrawn")

	k.mu.Lock()
	k.gone = false
	k.mu.Unlock()
	mustVerify(t, v, tok)
}

// The verifier remembers a bounded number of tokens, and a token it has
// let go of still verifies.
func TestVerifyRemembersABoundedNumber(t *testing.T) {
	iss := authntest.New(t)
	v := iss.Verifier()
	v.SetRememberMax(3)
	var toks []string
	for range 10 {
		tok := iss.Token(t, authntest.NewUserID(), authn.RoleUser)
		toks = append(toks, tok)
		mustVerify(t, v, tok)
		if got := v.Remembered(); got > 3 {
			t.Fatalf("remembered %d tokens, more than 3", got)
		}
	}
	for _, tok := range toks {
		mustVerify(t, v, tok)
	}
}

// BenchmarkVerify is the cost of checking a client's token: the first time
// (EdDSA) and again (remembered).
func BenchmarkVerify(b *testing.B) {
	iss := authntest.New(b)
	tok := iss.Token(b, authntest.NewUserID(), authn.RoleUser)
	ctx := context.Background()
	for _, remember := range []bool{false, true} {
		name := "first"
		if remember {
			name = "remembered"
		}
		b.Run(name, func(b *testing.B) {
			v := iss.Verifier()
			for b.Loop() {
				if !remember {
					v.ForgetAll()
				}
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
