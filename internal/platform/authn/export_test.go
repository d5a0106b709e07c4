package authn

import "time"

// SetClock replaces the verifier's clock.
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// Remembered is how many tokens the verifier remembers.
func (v *Verifier) Remembered() int { return v.verified.Len() }

// SetRememberMax bounds the tokens the verifier remembers.
func (v *Verifier) SetRememberMax(n int) { v.verified.Resize(n) }

// ForgetAll empties the remembered tokens.
func (v *Verifier) ForgetAll() { v.verified.Purge() }
