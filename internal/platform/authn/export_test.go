package authn

import "time"

// SetClock replaces the verifier's clock.
func (v *Verifier) SetClock(now func() time.Time) { v.now = now }

// Remembered is how many tokens the verifier remembers.
func (v *Verifier) Remembered() int {
	v.verified.mu.Lock()
	defer v.verified.mu.Unlock()
	return len(v.verified.m)
}

// SetRememberMax bounds the tokens the verifier remembers.
func (v *Verifier) SetRememberMax(n int) { v.verified.max = n }

// ForgetAll empties the remembered tokens.
func (v *Verifier) ForgetAll() {
	v.verified.mu.Lock()
	defer v.verified.mu.Unlock()
	clear(v.verified.m)
}
