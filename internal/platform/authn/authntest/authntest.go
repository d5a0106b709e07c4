// Package authntest issues real access tokens for tests of services that
// verify them, without running the users service.
package authntest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
)

// Issuer signs access tokens with its own Ed25519 key and is the KeySource
// that verifies them.
type Issuer struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

// New returns an issuer with a fresh key.
func New(t testing.TB) *Issuer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{kid: uuid.NewString(), priv: priv, pub: pub}
}

// PublicKey implements authn.KeySource.
func (i *Issuer) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	if kid != i.kid {
		return nil, fmt.Errorf("kid %q: %w", kid, authn.ErrUnknownKey)
	}
	return i.pub, nil
}

// JWKS returns the issuer's public key as a key set, as the users
// service publishes it.
func (i *Issuer) JWKS() authn.JWKS {
	return authn.JWKS{Keys: []authn.JWK{authn.NewJWK(i.kid, i.pub)}}
}

// Verifier returns a verifier that trusts this issuer.
func (i *Issuer) Verifier() *authn.Verifier { return authn.NewVerifier(i) }

// Token returns a valid 15-minute access token for userID with role.
func (i *Issuer) Token(t testing.TB, userID, role string) string {
	return i.TokenAt(t, userID, role, time.Now(), 15*time.Minute)
}

// TokenAt returns a token issued at iat, valid for ttl.
func (i *Issuer) TokenAt(t testing.TB, userID, role string, iat time.Time, ttl time.Duration) string {
	t.Helper()
	c := authn.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: userID, Issuer: authn.Issuer, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(iat), ExpiresAt: jwt.NewNumericDate(iat.Add(ttl)),
		},
		Role: role, ID: userID,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = i.kid
	s, err := tok.SignedString(i.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NewUserID returns a random user id.
func NewUserID() string { return uuid.Must(uuid.NewV7()).String() }

// Directory answers whether accounts exist, as the users service does for
// the storage and usage services: the ids added exist, others do not, and
// after Fail every lookup fails with the error given.
type Directory struct {
	mu  sync.Mutex
	ids map[string]bool
	err error
}

// Add makes ids exist.
func (d *Directory) Add(ids ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = map[string]bool{}
	}
	for _, id := range ids {
		d.ids[id] = true
	}
}

// Fail makes every later lookup fail with err (nil: answer again).
func (d *Directory) Fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

// UserExists implements storage.Users and usage.Users.
func (d *Directory) UserExists(_ context.Context, id string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return false, d.err
	}
	return d.ids[id], nil
}
