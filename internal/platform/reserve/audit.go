package reserve

import (
	"context"
	"fmt"
	"time"
)

// What a consistency check (reel check) reads from and corrects in a
// ledger.

// Lapsed is what a ledger still holds past its time: holds the sweep has
// not expired although their expiry is behind.
type Lapsed struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// Lapsed counts the holds still held whose expiry is before now - grace:
// none when the sweep keeps up.
func (l *Ledger) Lapsed(ctx context.Context, now time.Time, grace time.Duration) (Lapsed, error) {
	out, err := l.store.Lapsed(ctx, l.db.R, now.Add(-grace))
	if err != nil {
		return Lapsed{}, fmt.Errorf("lapsed %ss: %w", l.cfg.Name, err)
	}
	return out, nil
}

// Account is a user's stored bytes in a ledger that keeps them per object
// (the storage quota): the total it counts, and what its objects add up
// to, which are the same unless the ledger is wrong.
type Account struct {
	UserID      string `json:"user_id"`
	UsedBytes   int64  `json:"used_bytes"`
	ObjectBytes int64  `json:"object_bytes"`
	Objects     int    `json:"objects"`
	// Changed is when the account or one of its objects last changed.
	Changed time.Time `json:"changed"`
}

// Object is one stored object's bytes in an Account.
type Object struct {
	Key   string `json:"key"`
	Bytes int64  `json:"bytes"`
	// UpdatedAt is when the object's bytes last changed.
	UpdatedAt time.Time `json:"updated_at"`
}

// Correction sets an object's bytes to Bytes, or removes it when Bytes is
// -1, provided they are still Was (-1: the object is absent): a check
// corrects what it saw, never what changed after it looked.
type Correction struct {
	Key   string `json:"key"`
	Was   int64  `json:"was"`
	Bytes int64  `json:"bytes"`
}
