package videos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/reel-video/reel/internal/platform/reserve"
)

// The check's side of the storage ledger, and its repairs. What Fix does:
//   - an orphan blob is deleted (it is older than the grace period, and a
//     fresh read shows no video of its id);
//   - a user's ledger is set to what their videos store, object by object,
//     each correction applied only if the ledger still has what the check
//     saw (storage.Service.Correct);
//   - a missing or resized derived file (poster, rendition, storyboard) of
//     a video whose own bytes are sound is dropped with its set, its
//     charges given back, and its job enqueued to make it again
//     (check_derived.go);
//   - reservations past their time are released by their sweep.
//
// A video's own bytes missing or resized are reported only: the video is
// left as it is, in its state, for the operator to restore the blob from
// a backup (nothing can make those bytes again, and a video marked failed
// or deleted here could not be given back its bytes by a restore of the
// blob store).

// ledger compares each storage account with what its owner's videos store.
func (c *checker) ledger(ctx context.Context) error {
	if c.s.ledger == nil {
		c.rep.Unchecked = append(c.rep.Unchecked, "storage ledger: no storage service to ask in this process")
		return nil
	}
	var seen []string // every account's user id, in order
	after := ""
	for {
		page, err := c.s.ledger.Accounts(ctx, after, checkBatch)
		if err != nil {
			return err
		}
		for _, a := range page {
			c.rep.Accounts++
			if err := c.account(ctx, a, after); err != nil {
				return err
			}
			seen = append(seen, a.UserID)
			after = a.UserID
		}
		if len(page) < checkBatch {
			break
		}
	}
	// Owners with bytes to count and no account at all.
	for _, user := range slices.Sorted(maps.Keys(c.owed)) {
		i, found := slices.BinarySearch(seen, user)
		if found || sum(c.owed[user]) == 0 {
			continue
		}
		prev := ""
		if i > 0 {
			prev = seen[i-1]
		}
		if err := c.account(ctx, reserve.Account{UserID: user}, prev); err != nil {
			return err
		}
	}
	return nil
}

// account compares one account (read after the user id prev) with what
// the owner's videos store. A difference is read again from both sides
// before it counts: a change in flight between the two reads of the
// first look is seen by the second.
func (c *checker) account(ctx context.Context, a reserve.Account, prev string) error {
	if c.inFlight(a, c.busy[a.UserID]) {
		c.rep.InFlight++
		return nil
	}
	owed := c.owed[a.UserID]
	if agree(a, owed) {
		return nil
	}
	a, err := c.reread(ctx, a.UserID, prev)
	if err != nil {
		return err
	}
	owed, busy, err := c.reowe(ctx, a.UserID)
	if err != nil {
		return err
	}
	if c.inFlight(a, busy) {
		c.rep.InFlight++
		return nil
	}
	if agree(a, owed) {
		return nil
	}
	want := sum(owed)
	detail := fmt.Sprintf("user %s: the storage ledger counts %d bytes, their videos store %d", a.UserID, a.UsedBytes, want)
	if a.ObjectBytes != a.UsedBytes {
		detail += fmt.Sprintf(" (the ledger's objects add up to %d)", a.ObjectBytes)
	}
	f := c.add(Finding{Kind: FindLedger, UserID: a.UserID, Want: want, Got: a.UsedBytes, Detail: detail})
	if c.opt.Fix {
		f.Fixed, err = c.correct(ctx, a.UserID, owed)
	}
	return err
}

func (c *checker) inFlight(a reserve.Account, busy bool) bool {
	return busy || micros(a.Changed) > c.cutoff
}

func agree(a reserve.Account, owed map[string]int64) bool {
	want := sum(owed)
	return a.UsedBytes == want && a.ObjectBytes == want
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, b := range m {
		n += b
	}
	return n
}

// reread reads the account of user again (the zero account, with its
// id, when there is none), from the user id prev on.
func (c *checker) reread(ctx context.Context, user, prev string) (reserve.Account, error) {
	for {
		page, err := c.s.ledger.Accounts(ctx, prev, 10)
		if err != nil {
			return reserve.Account{}, err
		}
		for _, a := range page {
			switch {
			case a.UserID == user:
				return a, nil
			case a.UserID > user:
				return reserve.Account{UserID: user}, nil
			}
			prev = a.UserID
		}
		if len(page) < 10 {
			return reserve.Account{UserID: user}, nil
		}
	}
}

// reowe reads what the owner's videos store again, and whether one of
// them is in flight.
func (c *checker) reowe(ctx context.Context, owner string) (map[string]int64, bool, error) {
	rs, err := c.s.store.videosOf(ctx, owner)
	if err != nil {
		return nil, false, err
	}
	if err := c.s.store.withFiles(ctx, c.s.db.R, rs); err != nil {
		return nil, false, err
	}
	sub := &checker{s: c.s, cutoff: c.cutoff, owed: map[string]map[string]int64{owner: {}}, busy: map[string]bool{}}
	for _, r := range rs {
		sub.owe(r)
	}
	return sub.owed[owner], sub.busy[owner], nil
}

// maxCorrections is how many corrections one Correct call carries.
const maxCorrections = 1000

// correct sets the user's ledger to owed, object by object, and reports
// whether every correction applied (one that did not met a change made
// after the check looked; the next check looks again).
func (c *checker) correct(ctx context.Context, user string, owed map[string]int64) (bool, error) {
	have := map[string]int64{}
	after := ""
	for {
		page, err := c.s.ledger.Objects(ctx, user, after, maxCorrections)
		if err != nil {
			return false, err
		}
		for _, o := range page {
			have[o.Key] = o.Bytes
			after = o.Key
		}
		if len(page) < maxCorrections {
			break
		}
	}
	var fixes []reserve.Correction
	for k, want := range owed {
		if got, ok := have[k]; !ok {
			fixes = append(fixes, reserve.Correction{Key: k, Was: -1, Bytes: want})
		} else if got != want {
			fixes = append(fixes, reserve.Correction{Key: k, Was: got, Bytes: want})
		}
	}
	for k, got := range have {
		if _, ok := owed[k]; !ok {
			fixes = append(fixes, reserve.Correction{Key: k, Was: got, Bytes: -1})
		}
	}
	slices.SortFunc(fixes, func(a, b reserve.Correction) int { return cmp.Compare(a.Key, b.Key) })
	applied := 0
	// At least one call: it also recounts the account's total.
	for i := 0; i == 0 || i < len(fixes); i += maxCorrections {
		n, err := c.s.ledger.Correct(ctx, user, fixes[i:min(i+maxCorrections, len(fixes))])
		if err != nil {
			return false, err
		}
		applied += n
	}
	return applied == len(fixes), nil
}

// deleteOrphan deletes the blob of finding f once a fresh read shows that
// no video of its id exists.
func (c *checker) deleteOrphan(ctx context.Context, f *Finding) error {
	if f.VideoID != "" {
		_, err := c.s.store.video(ctx, c.s.db.W, f.VideoID)
		if err == nil {
			return nil // made meanwhile: not an orphan
		}
		if !errors.Is(err, ErrVideoNotFound) {
			return err
		}
	}
	if err := c.s.blobs.Delete(ctx, f.Key); err != nil {
		return err
	}
	c.s.log.Warn("check: deleted an orphan blob", "key", f.Key, "bytes", f.Got)
	f.Fixed = true
	return nil
}
