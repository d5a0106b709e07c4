// Package reserve is the reservation ledger of the services that admit
// bytes against a limit (the storage quota, the daily upload volume). Bytes
// are held when work starts, then committed with the real amount, released,
// or expired by the sweep, so that a caller that crashes never leaks what
// it held:
//
//	held ──Commit──▶ committed
//	held ──Release─▶ released
//	held ──Sweep───▶ expired ──Commit, if it still fits──▶ committed
//	held ──Renew───▶ held, its time pushed on
//
// A holder that may die mid-work (an upload on a server that is killed)
// takes its hold as a lease: a short time that it renews while the work
// goes on, so that a dead holder's bytes come back within a lease, not
// after the hours the work might have lasted. A hold never lives longer
// than MaxTTL after it was made, however often it is renewed.
//
// Every move is one conditional write of the hold's state (Store.Settle),
// so two concurrent settlements (a Commit racing the sweep) never both
// touch the account. Reserve is idempotent by the hold's id, which a caller
// retrying over the network chooses; Commit is idempotent for the same
// values; Release always is.
//
// The ledger owns the flow and the rules; each service keeps its tables
// and SQL behind Store, and passes what differs per call (how a hold is
// taken from its account, how a commit is admitted) as functions.
package reserve

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Limits on arguments. MaxBytes keeps every sum far from int64 overflow
// (SQLite would silently turn an overflowing sum into a float).
const (
	// MaxBytes is the largest byte count a hold or a commit may have (1 PiB).
	MaxBytes = int64(1) << 50
	// MaxTTL is the longest a hold may last. Work that pauses for longer
	// (a resumable upload) holds again when it resumes.
	MaxTTL = 7 * 24 * time.Hour
	// SettledRetention is how long settled holds are remembered, so that
	// a retried Commit or Release whose first answer was lost gets the
	// same answer instead of "not found".
	SettledRetention = 24 * time.Hour
	// defaultSweepBatch bounds the holds expired per transaction, so that
	// a backlog does not hold SQLite's single writer for long.
	defaultSweepBatch = 1000
)

// Errors shared by the services that keep a ledger; they re-export them
// as their own.
var (
	// ErrInvalid is a call with out-of-range arguments (a caller's bug).
	ErrInvalid = errs.New(errs.Validation, "validation_failed", "some values are not valid")
	// ErrInvalidUserID is a user id that is not a canonical UUID.
	ErrInvalidUserID = errs.New(errs.Invalid, "invalid_user_id", "the user id must be a UUID")
)

// State is where a hold is in its life.
type State string

// The states of a hold.
const (
	Held      State = "held"
	Committed State = "committed"
	Released  State = "released"
	Expired   State = "expired"
)

// Hold is bytes held against a user's account until they are committed,
// released or expire. It is what Reserve answers, in process and over
// HTTP alike.
type Hold struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Bytes  int64  `json:"bytes"`
	// Day is the UTC day (YYYY-MM-DD) the hold counts on, for a ledger
	// whose accounts are kept per day; empty for one that has no days.
	Day       string    `json:"day,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Unanswered is what a failed Reserve returns beside its error: the hold
// it asked for under id when the call may have made it all the same (no
// classified refusal came back, so the request may have reached the
// ledger and only its answer been lost, or the commit gone through as its
// context ended), else no hold. Its caller releases a hold so returned
// (Release is idempotent and knows no unknown id), instead of leaving the
// bytes held until the lease lapses.
func Unanswered(id string, err error) Hold {
	if e, ok := errs.As(err); ok && e.Kind != errs.Unavailable {
		return Hold{}
	}
	return Hold{ID: id}
}

// Settlement is what a commit records: the real amount, and for a ledger
// that tracks where bytes went, the object they went to.
type Settlement struct {
	Actual int64
	Object string
}

// Record is a stored hold as Store.Get reads it back.
type Record struct {
	Hold
	State State
	// Settlement is what the commit recorded (zero unless committed).
	Settlement Settlement
}

// Store is one service's SQL for its holds and for giving held bytes back
// to its accounts. Every method runs on the Querier given, so the ledger
// decides what happens in one transaction. Times are stored as the
// service likes (both services use Unix microseconds).
type Store interface {
	// Get reads the hold with id; found is false when there is none.
	Get(ctx context.Context, q sqldb.Querier, id string) (r Record, found bool, err error)
	// Insert stores h as held, made at now. An id that exists must fail
	// with the engine's unique violation (a primary key does).
	Insert(ctx context.Context, q sqldb.Querier, h Hold, now time.Time) error
	// Settle moves the hold id from state from to state to, recording s
	// when it is not nil, and returns the hold (ID, UserID, Bytes, Day) if
	// this call made the move; ok is false when the hold was not in from.
	Settle(ctx context.Context, q sqldb.Querier, id string, from, to State, s *Settlement, now time.Time) (h Hold, ok bool, err error)
	// Expire moves up to limit held holds whose ExpiresAt is not after
	// now to expired, oldest first, and returns them.
	Expire(ctx context.Context, q sqldb.Querier, now time.Time, limit int) ([]Hold, error)
	// Forget deletes the holds settled before cutoff.
	Forget(ctx context.Context, q sqldb.Querier, cutoff time.Time) error
	// Extend moves the expiry of hold id to until, but not past its
	// creation plus maxLife, if it is still held. It returns the new
	// expiry; ok is false when the hold is not held (or unknown).
	Extend(ctx context.Context, q sqldb.Querier, id string, until time.Time, maxLife time.Duration) (expires time.Time, ok bool, err error)
	// GiveBack returns bytes held on the account of userID (and day) to it.
	GiveBack(ctx context.Context, q sqldb.Querier, userID, day string, bytes int64, now time.Time) error
	// Lapsed counts the holds still held whose ExpiresAt is before
	// before, and the bytes they hold.
	Lapsed(ctx context.Context, q sqldb.Querier, before time.Time) (Lapsed, error)
}

// Take holds h.Bytes on the account of h.UserID (and h.Day) in tx, by one
// conditional write that decides whether they fit. To refuse, it returns
// Refuse(err): the transaction still commits, so that the service can
// record why in it, and Reserve returns err. Any other error rolls back.
type Take func(ctx context.Context, tx *sql.Tx, h Hold) error

// Admit turns held bytes into actual ones on the account of h, in tx.
// h.Bytes is what the hold still holds: 0 when it had expired, so that
// everything is admitted anew. An error (a refusal included) rolls the
// commit back and leaves the hold as it was, for the caller to release.
type Admit func(ctx context.Context, tx *sql.Tx, h Hold, actual int64) error

// Refuse marks err as Take's refusal.
func Refuse(err error) error { return refusal{err} }

type refusal struct{ err error }

func (r refusal) Error() string { return "refused: " + r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// Config configures a ledger.
type Config struct {
	// Name says what a hold is in errors and logs ("storage reservation").
	Name string
	// NotFound is the service's error for a Commit of an unknown hold;
	// Settled for a Commit of a hold released or committed otherwise, and
	// for a Reserve whose id belongs to a different hold.
	NotFound, Settled *errs.Error
	// SweepBatch bounds the holds expired per transaction (default 1000).
	SweepBatch int
}

// Ledger runs one service's holds through their states.
type Ledger struct {
	db    *sqldb.DB
	store Store
	cfg   Config
	log   *slog.Logger
}

// New returns the ledger of the holds in store, on db.
func New(db *sqldb.DB, store Store, cfg Config, log *slog.Logger) *Ledger {
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = defaultSweepBatch
	}
	return &Ledger{db: db, store: store, cfg: cfg, log: log}
}

// errSame signals that a Reserve found its hold made already.
var errSame = errors.New("hold exists")

// errDuplicate signals that a concurrent Reserve with the same id inserted
// its hold first.
var errDuplicate = errors.New("duplicate hold id")

// Reserve holds want.Bytes (want.ID, UserID and Day set by the caller)
// for ttl from now, if take finds room. A Reserve whose id exists answers
// with the existing hold when it is the same request again (same user and
// bytes), and with Settled otherwise.
func (l *Ledger) Reserve(ctx context.Context, want Hold, ttl time.Duration, now time.Time, take Take) (Hold, error) {
	if err := CheckUser(want.UserID); err != nil {
		return Hold{}, err
	}
	if !CanonicalUUID(want.ID) {
		return Hold{}, Invalid("id", "must be a UUID")
	}
	if want.Bytes < 0 || want.Bytes > MaxBytes {
		return Hold{}, Invalid("bytes", fmt.Sprintf("must be between 0 and %d", MaxBytes))
	}
	if ttl <= 0 || ttl > MaxTTL {
		return Hold{}, Invalid("ttl", fmt.Sprintf("must be positive and at most %s", MaxTTL))
	}
	want.ExpiresAt = now.Add(ttl).UTC().Truncate(time.Microsecond)
	var (
		refused error
		old     Hold
	)
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		refused = nil
		r, found, err := l.store.Get(ctx, tx, want.ID)
		if err != nil {
			return err
		}
		if found {
			old = r.Hold
			return l.same(r.Hold, want)
		}
		if err := take(ctx, tx, want); err != nil {
			var ref refusal
			if errors.As(err, &ref) {
				refused = ref.err
				return nil
			}
			return err
		}
		if err := l.store.Insert(ctx, tx, want, now); err != nil {
			if sqldb.IsUniqueViolation(err) {
				return errDuplicate
			}
			return err
		}
		return nil
	})
	if errors.Is(err, errDuplicate) {
		// The other attempt committed first; answer as it did.
		r, found, rerr := l.store.Get(ctx, l.db.W, want.ID)
		switch {
		case rerr != nil:
			err = rerr
		case !found:
			err = l.cfg.NotFound
		default:
			old, err = r.Hold, l.same(r.Hold, want)
		}
	}
	if errors.Is(err, errSame) {
		return old, nil
	}
	if err != nil {
		// A commit cut off by its context may have committed all the
		// same: name the hold for the caller to release (Unanswered).
		err = fmt.Errorf("reserve %s: %w", l.cfg.Name, err)
		return Unanswered(want.ID, err), err
	}
	if refused != nil {
		return Hold{}, refused
	}
	return want, nil
}

// same answers a Reserve whose id exists: errSame for the same request
// again, Settled for anything else. The day is not compared: a retry
// after midnight is still the same request.
func (l *Ledger) same(old, want Hold) error {
	if old.UserID != want.UserID || old.Bytes != want.Bytes {
		return l.cfg.Settled.WithMsg("a different reservation with this id exists")
	}
	return errSame
}

// Commit settles hold id with s, admitting s.Actual with admit. The amount
// may differ from what was held (admit decides whether more fits). A
// hold that expired before its Commit is admitted anew against the account
// as it stands, so that slow work still succeeds when there is room. A
// repeated Commit with the same values succeeds and changes nothing; with
// other values, or of a released hold, it is Settled; of an unknown hold,
// NotFound.
func (l *Ledger) Commit(ctx context.Context, id string, s Settlement, now time.Time, admit Admit) error {
	if !CanonicalUUID(id) {
		return l.cfg.NotFound
	}
	if s.Actual < 0 || s.Actual > MaxBytes {
		return Invalid("actual_bytes", fmt.Sprintf("must be between 0 and %d", MaxBytes))
	}
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		h, ok, err := l.store.Settle(ctx, tx, id, Held, Committed, &s, now)
		if err != nil {
			return err
		}
		if !ok {
			// Not held: a repeat, a commit after expiry, or a bug.
			r, found, err := l.store.Get(ctx, tx, id)
			if err != nil {
				return err
			}
			if !found {
				return l.cfg.NotFound
			}
			switch r.State {
			case Committed:
				if r.Settlement == s {
					return nil
				}
				return l.cfg.Settled
			case Expired:
				if h, ok, err = l.store.Settle(ctx, tx, id, Expired, Committed, &s, now); err != nil {
					return err
				} else if !ok {
					return l.cfg.Settled
				}
				h.Bytes = 0 // nothing is held any more
			default:
				return l.cfg.Settled
			}
		}
		return admit(ctx, tx, h, s.Actual)
	})
	if err != nil {
		return fmt.Errorf("commit %s %s: %w", l.cfg.Name, id, err)
	}
	return nil
}

// Release gives hold id back. Releasing a hold that is settled, or
// unknown, or an id that cannot be one, does nothing.
func (l *Ledger) Release(ctx context.Context, id string, now time.Time) error {
	if !CanonicalUUID(id) {
		return nil
	}
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		h, ok, err := l.store.Settle(ctx, tx, id, Held, Released, nil, now)
		if err != nil || !ok {
			return err
		}
		return l.store.GiveBack(ctx, tx, h.UserID, h.Day, h.Bytes, now)
	})
	if err != nil {
		return fmt.Errorf("release %s %s: %w", l.cfg.Name, id, err)
	}
	return nil
}

// Renew pushes the expiry of hold id to ttl from now (a lease renewed),
// never past MaxTTL after the hold was made. It answers with the new
// expiry; NotFound for an unknown hold, Settled for one that is no longer
// held (committed, released, or expired because its lease lapsed: the
// holder then commits anyway, and the commit admits its bytes anew).
func (l *Ledger) Renew(ctx context.Context, id string, ttl time.Duration, now time.Time) (time.Time, error) {
	if !CanonicalUUID(id) {
		return time.Time{}, l.cfg.NotFound
	}
	if ttl <= 0 || ttl > MaxTTL {
		return time.Time{}, Invalid("ttl", fmt.Sprintf("must be positive and at most %s", MaxTTL))
	}
	until := now.Add(ttl).UTC().Truncate(time.Microsecond)
	exp, ok, err := l.store.Extend(ctx, l.db.W, id, until, MaxTTL)
	if err != nil {
		return time.Time{}, fmt.Errorf("renew %s %s: %w", l.cfg.Name, id, err)
	}
	if ok {
		return exp, nil
	}
	_, found, err := l.store.Get(ctx, l.db.W, id)
	switch {
	case err != nil:
		return time.Time{}, fmt.Errorf("renew %s %s: %w", l.cfg.Name, id, err)
	case !found:
		return time.Time{}, l.cfg.NotFound
	default:
		return time.Time{}, l.cfg.Settled.WithMsg("the reservation is no longer held")
	}
}

// Sweep expires the holds whose time is up, giving their bytes back, and
// forgets holds settled more than SettledRetention ago. It returns how
// many holds expired. Several replicas may sweep at once: each hold is
// expired by exactly one of them.
func (l *Ledger) Sweep(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for {
		var n int
		err := l.db.Tx(ctx, func(tx *sql.Tx) error {
			holds, err := l.store.Expire(ctx, tx, now, l.cfg.SweepBatch)
			if err != nil {
				return err
			}
			n = len(holds)
			// One update per account, in a fixed order, so that two
			// sweeping replicas lock accounts in the same order on
			// PostgreSQL.
			for _, a := range perAccount(holds) {
				if err := l.store.GiveBack(ctx, tx, a.UserID, a.Day, a.Bytes, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sweep %ss: %w", l.cfg.Name, err)
		}
		total += n
		if n < l.cfg.SweepBatch {
			break
		}
	}
	if total > 0 {
		l.log.Info("released expired "+l.cfg.Name+"s", "count", total)
	}
	if err := l.store.Forget(ctx, l.db.W, now.Add(-SettledRetention)); err != nil {
		return total, fmt.Errorf("sweep %ss: %w", l.cfg.Name, err)
	}
	return total, nil
}

// perAccount sums holds by account (user and day), sorted.
func perAccount(holds []Hold) []Hold {
	type key struct{ user, day string }
	sums := map[key]int64{}
	for _, h := range holds {
		sums[key{h.UserID, h.Day}] += h.Bytes
	}
	out := make([]Hold, 0, len(sums))
	for k, b := range sums {
		out = append(out, Hold{UserID: k.user, Day: k.day, Bytes: b})
	}
	slices.SortFunc(out, func(a, b Hold) int {
		return cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Day, b.Day))
	})
	return out
}

// NewID returns a fresh hold id. Time-ordered ids keep the index of a
// reservations table append-mostly.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// CanonicalUUID reports whether s is a UUID written in its canonical form
// (lower case, hyphenated), the only form ids are handed out in.
func CanonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

// CheckUser accepts only canonical UUIDs, the form the users service
// issues: another spelling of the same id would otherwise be a second
// account with limits of its own.
func CheckUser(id string) error {
	if !CanonicalUUID(id) {
		return ErrInvalidUserID
	}
	return nil
}

// Millis is ttl in whole milliseconds, as the services' internal routes
// take it: at least 1 when ttl is positive, so that a sub-millisecond ttl
// is not sent as the invalid 0.
func Millis(ttl time.Duration) int64 {
	if ttl > 0 {
		return max(1, ttl.Milliseconds())
	}
	return ttl.Milliseconds()
}

// Invalid is ErrInvalid naming field and what is wrong with it.
func Invalid(field, msg string) error {
	return ErrInvalid.WithMsg(field + " " + msg).WithFields(map[string]string{field: msg})
}
