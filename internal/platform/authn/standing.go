package authn

import (
	"context"
	"fmt"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
)

// Standing is what a token's holder may do now, whatever the token says:
// an access token is good for its whole life, but an account can be
// disabled or demoted meanwhile.
type Standing struct {
	Disabled bool
	Role     string
	// ValidAfter revokes the tokens issued before it (disabling sets it).
	ValidAfter time.Time
}

// StandingSource gives an account's standing: the users service in
// process, or its client.
type StandingSource interface {
	Standing(ctx context.Context, userID string) (Standing, error)
}

// ErrRevoked refuses a token whose account was disabled, or that was
// issued before the account's tokens were revoked.
var ErrRevoked = errs.New(errs.Unauthenticated, "token_revoked", "this access token was revoked: log in again")

// standingTTL is how long a standing is believed on its own: without a
// Watch (or while it cannot read the version) a disabled account or a
// demotion bites within this on every replica, for one lookup per active
// account and period. With a working Watch, within about a second.
const standingTTL = 3 * time.Second

// standingsMax bounds the standings remembered: a few dozen bytes each.
const standingsMax = 16384

// SetStanding makes the verifier check every caller's standing (cached for
// a few seconds, or while w sees no account change; w may be nil) after
// the token itself.
func (v *Verifier) SetStanding(src StandingSource, w *Watch) {
	v.standing = src
	v.standings = NewWatchedCache[Standing](w, standingsMax, standingTTL)
}

// Watch is the watch of the accounts version the verifier's cache relies
// on, nil for none: other caches of account data share it.
func (v *Verifier) Watch() *Watch {
	if v.standings == nil {
		return nil
	}
	return v.standings.w
}

// CallerOf is the principal of verified claims, as the account stands now
// (ErrRevoked for a disabled account or a token issued before a cut).
func (v *Verifier) CallerOf(ctx context.Context, c *Claims) (Caller, error) { return v.caller(ctx, c) }

// caller is the principal of verified claims, as the account stands now.
func (v *Verifier) caller(ctx context.Context, c *Claims) (Caller, error) {
	var issued time.Time
	if c.IssuedAt != nil {
		issued = c.IssuedAt.Time
	}
	role, err := v.Admit(ctx, c.Subject, issued)
	if err != nil {
		return Caller{}, err
	}
	if role == "" {
		role = c.Role
	}
	return Caller{UserID: c.Subject, Role: role}, nil
}

// Admit checks that the account userID, as it stands now (cached while no
// account changes, or for a few seconds), may still use a credential issued at issued (zero when
// unknown): ErrRevoked for a disabled account, or for a credential issued
// before the account's tokens were revoked. It returns the account's
// current role, "" when unknown. Tokens and the viewer of a signed media
// URL are checked this way. When the standing cannot be read (the users
// service is down in split mode), the credential stands, as it did before
// revocation existed: requests keep working, and revocation bites once
// users answers.
func (v *Verifier) Admit(ctx context.Context, userID string, issued time.Time) (role string, err error) {
	if v.standing == nil {
		return "", nil
	}
	st, ok := v.standings.Get(userID)
	if !ok {
		stamp := v.standings.Stamp()
		var err error
		if st, err = v.standing.Standing(ctx, userID); err != nil {
			return "", nil
		}
		v.standings.Add(userID, st, stamp)
	}
	if st.Disabled {
		return "", fmt.Errorf("account disabled: %w", ErrRevoked)
	}
	// iat has second precision: a token from the second of the cut is
	// kept, rather than one issued just after it (on re-enabling) refused.
	if !issued.IsZero() && issued.Before(st.ValidAfter.Truncate(time.Second)) {
		return "", fmt.Errorf("issued before the cut: %w", ErrRevoked)
	}
	if st.Role == RoleUser || st.Role == RoleAdmin {
		return st.Role, nil
	}
	return "", nil
}

// Forget drops a cached standing, so that this process applies a change at
// once (the users service calls it when it changes an account).
func (v *Verifier) Forget(userID string) {
	if v.standings != nil {
		v.standings.Remove(userID)
	}
}
