package authn

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// Service credentials authenticate one reel service to another on
// /internal/v1 routes in split mode: short-lived HS256 tokens signed with
// the shared REEL_SERVICE_KEY, naming the calling service. They use their
// own audience and a different algorithm from user tokens, so neither kind
// can be passed off as the other.

// serviceAudience is the aud claim of service credentials.
const serviceAudience = "reel-internal"

// serviceTTL is how long a service credential lives; callers cache one
// and renew it well before it expires.
const serviceTTL = 2 * time.Minute

// ErrServiceCredential is returned for a missing or bad service credential.
var ErrServiceCredential = errs.New(errs.Unauthenticated, "invalid_service_credential", "this route requires a valid service credential")

// ServiceKeys signs and verifies service credentials.
type ServiceKeys struct {
	key  []byte
	name string
	now  func() time.Time

	mu     sync.Mutex
	cached string
	until  time.Time
}

// NewServiceKeys returns the credentials of service name under key.
func NewServiceKeys(key, name string) (*ServiceKeys, error) {
	if len(key) < 32 {
		return nil, errors.New("service key must have at least 32 characters (set REEL_SERVICE_KEY)")
	}
	return &ServiceKeys{key: []byte(key), name: name, now: time.Now}, nil
}

// Token returns a credential for this service, reusing one until it is
// half-way to expiry.
func (k *ServiceKeys) Token() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if k.cached != "" && now.Before(k.until) {
		return k.cached, nil
	}
	claims := jwt.RegisteredClaims{
		Subject: k.name, Issuer: Issuer, Audience: jwt.ClaimStrings{serviceAudience}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(serviceTTL)),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(k.key)
	if err != nil {
		return "", fmt.Errorf("sign service credential: %w", err)
	}
	k.cached, k.until = s, now.Add(serviceTTL/2)
	return s, nil
}

// Verify checks a service credential and returns the calling service.
func (k *ServiceKeys) Verify(token string) (string, error) {
	var c jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return k.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience(serviceAudience), jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(), jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(k.now))
	if err != nil || c.Subject == "" {
		return "", fmt.Errorf("verify service credential: %w", ErrServiceCredential)
	}
	return c.Subject, nil
}

// RequireService is middleware for /internal routes: it admits only
// requests carrying a valid service credential and puts the calling service
// in the context as the caller.
func (k *ServiceKeys) RequireService(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		svc, err := k.Verify(BearerToken(r))
		if err != nil {
			httpx.Error(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), Caller{Service: svc})))
	})
}

// Authorize sets a service credential on an outgoing request.
func (k *ServiceKeys) Authorize(r *http.Request) error {
	t, err := k.Token()
	if err != nil {
		return err
	}
	r.Header.Set("Authorization", "Bearer "+t)
	return nil
}
