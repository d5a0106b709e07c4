package users

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/authn"
)

// keyring holds the signing keys in memory, loaded from the database. The
// newest unretired key signs; every stored key verifies, so tokens signed
// before a rotation stay valid until they expire.
type keyring struct {
	store *Store
	mu    sync.RWMutex
	kid   string
	priv  ed25519.PrivateKey
	pubs  map[string]ed25519.PublicKey
}

// load reads the keys, creating the first one on a fresh database.
func (k *keyring) load(ctx context.Context, now time.Time) error {
	rows, err := k.store.keys(ctx)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		if err := k.rotate(ctx, now); err != nil {
			return err
		}
		return nil
	}
	return k.set(rows)
}

// rotate creates a new signing key and retires the others for signing.
func (k *keyring) rotate(ctx context.Context, now time.Time) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	row := keyRow{Kid: uuid.NewString(), Private: base64.StdEncoding.EncodeToString(priv.Seed()), CreatedAt: micros(now)}
	if err := k.store.insertKey(ctx, row); err != nil {
		return err
	}
	if err := k.store.retireKeys(ctx, row, micros(now)); err != nil {
		return err
	}
	rows, err := k.store.keys(ctx)
	if err != nil {
		return err
	}
	return k.set(rows)
}

func (k *keyring) set(rows []keyRow) error {
	pubs := make(map[string]ed25519.PublicKey, len(rows))
	var kid string
	var priv ed25519.PrivateKey
	for _, r := range rows {
		seed, err := base64.StdEncoding.DecodeString(r.Private)
		if err != nil || len(seed) != ed25519.SeedSize {
			return fmt.Errorf("signing key %s is corrupt", r.Kid)
		}
		p := ed25519.NewKeyFromSeed(seed)
		pubs[r.Kid] = p.Public().(ed25519.PublicKey)
		if kid == "" && !r.RetiredAt.Valid { // rows are newest first
			kid, priv = r.Kid, p
		}
	}
	if kid == "" {
		return fmt.Errorf("no active signing key")
	}
	k.mu.Lock()
	k.kid, k.priv, k.pubs = kid, priv, pubs
	k.mu.Unlock()
	return nil
}

func (k *keyring) sign(claims authn.Claims) (string, error) {
	k.mu.RLock()
	kid, priv := k.kid, k.priv
	k.mu.RUnlock()
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = kid
	s, err := t.SignedString(priv)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// PublicKey implements authn.KeySource in-process.
func (k *keyring) PublicKey(_ context.Context, kid string) (ed25519.PublicKey, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if p, ok := k.pubs[kid]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("kid %q: %w", kid, authn.ErrUnknownKey)
}

func (k *keyring) jwks() authn.JWKS {
	k.mu.RLock()
	defer k.mu.RUnlock()
	set := authn.JWKS{Keys: make([]authn.JWK, 0, len(k.pubs))}
	for kid, p := range k.pubs {
		set.Keys = append(set.Keys, authn.NewJWK(kid, p))
	}
	return set
}
