// Package authn verifies who is calling: user access tokens (EdDSA JWTs
// checked against the users service's published keys) and, in split mode,
// service credentials. Only the users service holds a private user key.
package authn

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// Roles.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Issuer is the iss claim of reel access tokens.
const Issuer = "reel"

// Claims are the claims of a reel access token. ID and Email repeat sub and
// the account's email for clients of the original system, which decode the
// payload to read them.
type Claims struct {
	jwt.RegisteredClaims
	Role  string `json:"role"`
	ID    string `json:"id,omitempty"`
	Email string `json:"email,omitempty"`
	// SessionID is the refresh-token family the token was issued with
	// (OpenID's sid), so a page can tell which of the sessions it is.
	SessionID string `json:"sid,omitempty"`
}

// Caller is the authenticated principal of a request.
type Caller struct {
	UserID string
	Role   string
	// Service is set instead of UserID for service credentials.
	Service string
}

// IsAdmin reports whether the caller has the admin role.
func (c Caller) IsAdmin() bool { return c.Role == RoleAdmin }

type ctxKey struct{}

// WithCaller returns a context carrying the caller.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// CallerFrom returns the caller in ctx, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(ctxKey{}).(Caller)
	return c, ok
}

// Errors.
var (
	ErrInvalidToken = errs.New(errs.Unauthenticated, "invalid_token", "the access token is missing, malformed, expired or not signed by reel")
	ErrAdminOnly    = errs.New(errs.Forbidden, "admin_required", "this action requires the admin role")
	ErrUnknownKey   = errors.New("unknown signing key")
)

// KeySource finds the public key for a kid. Implementations: the users
// service itself (all mode) and JWKSClient (split mode).
type KeySource interface {
	PublicKey(ctx context.Context, kid string) (ed25519.PublicKey, error)
}

// Verifier checks access tokens.
type Verifier struct {
	keys      KeySource
	leeway    time.Duration
	now       func() time.Time
	validator *jwt.Validator                    // the claims checks of Verify, for a remembered token
	verified  *lru.Cache[string, verifiedToken] // least recently used out first
	standing  StandingSource                    // nil: tokens are believed as they are
	standings *WatchedCache[Standing]
}

// NewVerifier returns a verifier that trusts the keys of src.
func NewVerifier(src KeySource) *Verifier {
	v := &Verifier{keys: src, leeway: 30 * time.Second, now: time.Now}
	v.verified, _ = lru.New[string, verifiedToken](verifiedTokensMax) // errs only for a size < 1
	v.validator = jwt.NewValidator(v.claimsOptions()...)
	return v
}

// claimsOptions are the checks of a token's claims, as opposed to its
// signature.
func (v *Verifier) claimsOptions() []jwt.ParserOption {
	return []jwt.ParserOption{
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
}

// Verify parses and checks a token: EdDSA only (refusing alg=none and the
// HS256-with-public-key confusion), a known kid, our issuer, and not expired.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if c, err, ok := v.remembered(ctx, token); ok {
		return c, err
	}
	var (
		claims = &Claims{}
		kid    string
		key    ed25519.PublicKey
	)
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		var err error
		key, err = v.keys.PublicKey(ctx, kid)
		return key, err
	}, append(v.claimsOptions(), jwt.WithValidMethods([]string{"EdDSA"}))...)
	if err != nil {
		if errors.Is(err, errs.ErrUnavailable) {
			// The keys could not be fetched: the token may be good, so
			// the caller should try again (503), not drop it (401).
			return nil, fmt.Errorf("verify token: %w", err)
		}
		return nil, fmt.Errorf("verify token: %w: %w", ErrInvalidToken, err)
	}
	if claims.Subject == "" || (claims.Role != RoleUser && claims.Role != RoleAdmin) {
		return nil, fmt.Errorf("verify token: bad subject or role: %w", ErrInvalidToken)
	}
	v.verified.Add(token, verifiedToken{claims: *claims, kid: kid, key: key})
	return claims, nil
}

// remembered answers for a token whose signature checked out before
// (ok false: not remembered, or its key has changed since). Its claims are
// checked again against the clock.
func (v *Verifier) remembered(ctx context.Context, token string) (_ *Claims, _ error, ok bool) {
	e, ok := v.verified.Get(token)
	if !ok {
		return nil, nil, false
	}
	if key, err := v.keys.PublicKey(ctx, e.kid); err != nil || !key.Equal(e.key) {
		v.verified.Remove(token)
		return nil, nil, false // the full check says why
	}
	if err := v.validator.Validate(&e.claims); err != nil {
		v.verified.Remove(token)
		return nil, fmt.Errorf("verify token: %w: %w", ErrInvalidToken, err), true
	}
	return &e.claims, nil, true
}

// verifiedTokensMax bounds the tokens a Verifier remembers: about 1 KiB
// each, so 4 MiB at most, for several thousand active clients.
const verifiedTokensMax = 4096

// A verifiedToken is a token whose signature checked out, remembered so that a
// client's next requests with the same token skip the EdDSA check, which
// costs far more than the lookup (BenchmarkVerify; figures in
// docs/benchmarks.md). Only the signature is taken on trust, and only for
// the exact bytes checked, under the same key: Verify checks the time
// claims again on every use, and forgets a token whose kid no longer gives
// the key it was checked with (a retired or replaced key).
type verifiedToken struct {
	claims Claims
	kid    string
	key    ed25519.PublicKey
}

// BearerToken extracts the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// Authenticate verifies the bearer token of r and returns the caller.
func (v *Verifier) Authenticate(r *http.Request) (Caller, error) {
	tok := BearerToken(r)
	if tok == "" {
		return Caller{}, ErrInvalidToken
	}
	c, err := v.Verify(r.Context(), tok)
	if err != nil {
		return Caller{}, err
	}
	return v.caller(r.Context(), c)
}

// Require is middleware that admits only requests with a valid access token
// and puts the caller in the context.
func (v *Verifier) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="reel"`)
			httpx.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
	})
}

// RequireAdmin is Require plus the admin role.
func (v *Verifier) RequireAdmin(next http.Handler) http.Handler {
	return v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _ := CallerFrom(r.Context()); !c.IsAdmin() {
			httpx.Error(w, r, ErrAdminOnly)
			return
		}
		next.ServeHTTP(w, r)
	}))
}

// JWK is one public key of a JSON Web Key Set (RFC 8037 OKP form).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is a JSON Web Key Set.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// NewJWK describes an Ed25519 public key.
func NewJWK(kid string, pub ed25519.PublicKey) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "EdDSA", Use: "sig"}
}

// PublicKey decodes the key, refusing anything but Ed25519.
func (k JWK) PublicKey() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" || k.Crv != "Ed25519" {
		return nil, fmt.Errorf("jwk %s: unsupported key type %s/%s", k.Kid, k.Kty, k.Crv)
	}
	b, err := base64.RawURLEncoding.DecodeString(k.X)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("jwk %s: bad public key", k.Kid)
	}
	return ed25519.PublicKey(b), nil
}
