// Package storage is the storage quota service: it owns each user's stored
// bytes, reservations and quota. An upload is admitted by reserving its
// declared size (Reserve), which succeeds only if used + reserved + bytes
// fits under the quota, decided by one conditional write in the database so
// that no race between requests or replicas can overshoot; the upload then
// commits the real size (Commit) or gives the reservation back (Release).
// Reservations that nobody settles expire and are released by Sweep, so a
// crashed upload never leaks quota.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Errors of the storage service.
var (
	// ErrQuotaExceeded refuses bytes that do not fit under the quota (413).
	ErrQuotaExceeded = errs.New(errs.TooLarge, "quota_exceeded", "the storage quota would be exceeded")
	// ErrReservationNotFound is a Commit of an unknown reservation.
	ErrReservationNotFound = errs.New(errs.NotFound, "reservation_not_found", "no such storage reservation")
	// ErrReservationSettled is a Commit of a reservation that was released,
	// or committed with other values.
	ErrReservationSettled = errs.New(errs.Conflict, "reservation_settled", "the storage reservation was already released or committed differently")
	// ErrInvalid is a call with out-of-range arguments (a caller's bug).
	ErrInvalid = errs.New(errs.Validation, "validation_failed", "some values are not valid")
	// ErrInvalidUserID is a user id that is not a UUID.
	ErrInvalidUserID = errs.New(errs.Invalid, "invalid_user_id", "the user id must be a UUID")
)

// Limits on arguments. MaxBytes keeps every sum far from int64 overflow
// (SQLite would silently turn an overflowing sum into a float).
const (
	// MaxBytes is the largest byte count any call accepts (1 PiB).
	MaxBytes = int64(1) << 50
	// MaxTTL is the longest a reservation may be held. Resumable uploads
	// that pause for longer re-reserve when they resume.
	MaxTTL = 7 * 24 * time.Hour
	// MaxObjectLen bounds an object key.
	MaxObjectLen = 512
	// Unlimited as a quota means no limit.
	Unlimited = int64(-1)
)

// settledRetention is how long settled reservations are remembered, so a
// retried Commit or Release (its first answer lost on the network) gets
// the same answer instead of "not found".
const settledRetention = 24 * time.Hour

// sweepBatch bounds the reservations expired per transaction, so a huge
// backlog does not hold the SQLite writer for long.
const sweepBatch = 1000

// serviceName is the service field of this service's activity events.
const serviceName = "storage"

// Quota is what other services call: the videos service to admit, commit
// and free bytes, the users service to set overrides. Both *Service (in
// process) and *Client (over HTTP in split mode) implement it, and pass the
// same contract tests.
type Quota interface {
	// Reserve holds bytes against the user's quota for ttl, or fails with
	// ErrQuotaExceeded (413) when used + reserved + bytes > quota.
	Reserve(ctx context.Context, userID string, bytes int64, ttl time.Duration) (Reservation, error)
	// Commit turns a reservation into actualBytes stored under object. It
	// is idempotent: committing the same reservation again with the same
	// values succeeds and changes nothing.
	Commit(ctx context.Context, reservationID string, actualBytes int64, object string) error
	// Release gives a reservation back. Idempotent; releasing a committed,
	// expired or unknown reservation does nothing.
	Release(ctx context.Context, reservationID string) error
	// Free removes an object's bytes from the user's stored bytes and
	// returns how many left. Idempotent: a freed object frees 0.
	Free(ctx context.Context, userID, object string) (int64, error)
	// Charge adds bytes produced after admission (posters) to an object.
	// It never fails for lack of room: see Service.Charge.
	Charge(ctx context.Context, userID, object string, bytes int64) error
	// Usage returns the user's figures.
	Usage(ctx context.Context, userID string) (Usage, error)
	// SetQuota sets the user's quota override in bytes, -1 for unlimited.
	SetQuota(ctx context.Context, userID string, quota int64) error
}

// Reservation is bytes held against a user's quota until it is committed,
// released or expires.
type Reservation struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Bytes     int64     `json:"bytes"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Usage is a user's storage figures. QuotaBytes and AvailableBytes are -1
// when the quota is unlimited.
type Usage struct {
	UsedBytes      int64 `json:"used_bytes"`
	ReservedBytes  int64 `json:"reserved_bytes"`
	QuotaBytes     int64 `json:"quota_bytes"`
	AvailableBytes int64 `json:"available_bytes"`
}

// available is what may still be reserved: never negative (a lowered
// quota can leave a user above it), -1 when unlimited.
func available(u Usage) int64 {
	if u.QuotaBytes < 0 {
		return Unlimited
	}
	return max(0, u.QuotaBytes-u.UsedBytes-u.ReservedBytes)
}

// Config configures the service.
type Config struct {
	// DefaultQuota is the quota of users without an override, in bytes;
	// -1 is unlimited.
	DefaultQuota int64
}

// Service implements the storage quota service.
type Service struct {
	db     *sqldb.DB
	store  *store
	events *outbox.Outbox
	log    *slog.Logger
	now    func() time.Time
}

var _ Quota = (*Service)(nil)

// New returns the service on db (migrated with Migrations), recording
// activity events in events.
func New(db *sqldb.DB, events *outbox.Outbox, cfg Config, log *slog.Logger) *Service {
	return &Service{
		db: db, store: &store{db: db, defaultQuota: cfg.DefaultQuota},
		events: events, log: log, now: time.Now,
	}
}

// SetClock replaces the clock, for tests of expiry.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

func (s *Service) event(ctx context.Context, action, outcome, desc string) outbox.Event {
	return outbox.NewEvent(ctx, serviceName, action, outcome, desc)
}

// Reserve implements Quota. The decision is the conditional UPDATE in
// store.tryReserve; a refusal records a QUOTA_EXCEEDED event.
func (s *Service) Reserve(ctx context.Context, userID string, bytes int64, ttl time.Duration) (Reservation, error) {
	return s.reserve(ctx, uuid.Must(uuid.NewV7()).String(), userID, bytes, ttl)
}

// reserve is Reserve with the reservation id chosen by the caller: the
// HTTP client picks it so that a retried request finds the reservation its
// first attempt made instead of reserving twice.
func (s *Service) reserve(ctx context.Context, id, userID string, bytes int64, ttl time.Duration) (Reservation, error) {
	if err := checkUser(userID); err != nil {
		return Reservation{}, err
	}
	if err := checkReservationID(id); err != nil {
		return Reservation{}, err
	}
	if bytes < 0 || bytes > MaxBytes {
		return Reservation{}, invalid("bytes", fmt.Sprintf("must be between 0 and %d", MaxBytes))
	}
	if ttl <= 0 || ttl > MaxTTL {
		return Reservation{}, invalid("ttl", fmt.Sprintf("must be positive and at most %s", MaxTTL))
	}
	now := s.now()
	r := Reservation{ID: id, UserID: userID, Bytes: bytes, ExpiresAt: now.Add(ttl).UTC().Truncate(time.Microsecond)}
	var (
		refused  *Usage
		existing reservationRow
	)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		refused = nil
		if old, err := s.store.reservation(ctx, tx, id); err == nil {
			existing = old
			return sameReservation(old, r)
		} else if !errors.Is(err, ErrReservationNotFound) {
			return err
		}
		if err := s.store.ensureAccount(ctx, tx, userID, micros(now)); err != nil {
			return err
		}
		ok, err := s.store.tryReserve(ctx, tx, userID, bytes, micros(now))
		if err != nil {
			return err
		}
		if !ok {
			u, err := s.store.account(ctx, tx, userID)
			if err != nil {
				return err
			}
			refused = &u
			e := s.event(ctx, "QUOTA_EXCEEDED", outbox.Denied,
				fmt.Sprintf("storage quota exceeded: %d bytes requested, %d of %d available", bytes, u.AvailableBytes, u.QuotaBytes)).
				ForUser(userID).On(userID).With("requested_bytes", bytes).With("used_bytes", u.UsedBytes).
				With("reserved_bytes", u.ReservedBytes).With("quota_bytes", u.QuotaBytes)
			// The refusal commits with its event: nothing else changed.
			return s.events.Add(ctx, tx, e)
		}
		return s.store.insertReservation(ctx, tx, reservationRow{
			ID: id, UserID: userID, Bytes: bytes, CreatedAt: micros(now), ExpiresAt: micros(r.ExpiresAt),
		})
	})
	if errors.Is(err, errDuplicateReservation) {
		// A concurrent retry inserted it first; answer as it did.
		old, rerr := s.store.reservation(ctx, s.db.W, id)
		if rerr != nil {
			return Reservation{}, fmt.Errorf("reserve storage: %w", rerr)
		}
		existing, err = old, sameReservation(old, r)
	}
	if errors.Is(err, errSameReservation) {
		return Reservation{ID: existing.ID, UserID: existing.UserID, Bytes: existing.Bytes, ExpiresAt: fromMicros(existing.ExpiresAt)}, nil
	}
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve storage: %w", err)
	}
	if refused != nil {
		return Reservation{}, quotaError(bytes, *refused)
	}
	return r, nil
}

// errSameReservation signals that a retried Reserve found its reservation.
var errSameReservation = errors.New("reservation exists")

// sameReservation answers a Reserve whose id exists: the same request
// again is answered with the existing reservation, anything else is a
// conflict.
func sameReservation(old reservationRow, want Reservation) error {
	if old.UserID != want.UserID || old.Bytes != want.Bytes {
		return ErrReservationSettled.WithMsg("a different reservation with this id exists")
	}
	return errSameReservation
}

func quotaError(bytes int64, u Usage) error {
	return ErrQuotaExceeded.WithMsg(fmt.Sprintf("the storage quota would be exceeded: %d bytes requested, %d of %d bytes available",
		bytes, u.AvailableBytes, u.QuotaBytes))
}

// Commit implements Quota. The actual size is recorded exactly: less than
// reserved gives the difference back, more must fit under the quota (else
// ErrQuotaExceeded and the reservation stays held, for the caller to
// release). A reservation that expired before its Commit is admitted
// again against the quota as it stands, so a slow upload still succeeds
// when there is room; when there is not, the caller must discard the
// object. Committing a released reservation is ErrReservationSettled.
func (s *Service) Commit(ctx context.Context, reservationID string, actualBytes int64, object string) error {
	if err := checkReservationID(reservationID); err != nil {
		return ErrReservationNotFound
	}
	if actualBytes < 0 || actualBytes > MaxBytes {
		return invalid("actual_bytes", fmt.Sprintf("must be between 0 and %d", MaxBytes))
	}
	if err := checkObject(object); err != nil {
		return err
	}
	now := micros(s.now())
	var refused *struct {
		userID string
		u      Usage
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		refused = nil
		userID, reserved, ok, err := s.store.settle(ctx, tx, reservationID, stateHeld, stateCommitted, &object, &actualBytes, now)
		if err != nil {
			return err
		}
		if !ok {
			// Not held: a repeat, a late commit after expiry, or a bug.
			r, err := s.store.reservation(ctx, tx, reservationID)
			if err != nil {
				return err
			}
			switch r.State {
			case stateCommitted:
				if r.Object.String == object && r.Actual.Int64 == actualBytes {
					return nil
				}
				return ErrReservationSettled
			case stateExpired:
				if userID, _, ok, err = s.store.settle(ctx, tx, reservationID, stateExpired, stateCommitted, &object, &actualBytes, now); err != nil {
					return err
				} else if !ok {
					return ErrReservationSettled
				}
				// Nothing is reserved any more: admit it all anew.
				reserved = 0
			default:
				return ErrReservationSettled
			}
		}
		fits, err := s.store.tryAdmit(ctx, tx, userID, reserved, actualBytes, now)
		if err != nil {
			return err
		}
		if !fits {
			u, err := s.store.account(ctx, tx, userID)
			if err != nil {
				return err
			}
			refused = &struct {
				userID string
				u      Usage
			}{userID, u}
			return errRefused
		}
		return s.store.addObject(ctx, tx, userID, object, actualBytes, now)
	})
	if errors.Is(err, errRefused) {
		// The transaction rolled back, so the event goes on its own.
		s.events.RecordOrLog(ctx, s.event(ctx, "QUOTA_EXCEEDED", outbox.Denied,
			fmt.Sprintf("storage quota exceeded at commit: %d bytes stored, %d of %d available", actualBytes, refused.u.AvailableBytes, refused.u.QuotaBytes)).
			ForUser(refused.userID).On(object).With("actual_bytes", actualBytes).With("quota_bytes", refused.u.QuotaBytes))
		return quotaError(actualBytes, refused.u)
	}
	if err != nil {
		return fmt.Errorf("commit storage reservation %s: %w", reservationID, err)
	}
	return nil
}

// errRefused rolls back a transaction whose conditional write refused.
var errRefused = errors.New("refused")

// Release implements Quota.
func (s *Service) Release(ctx context.Context, reservationID string) error {
	if checkReservationID(reservationID) != nil {
		return nil // no such reservation can exist
	}
	now := micros(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		userID, bytes, ok, err := s.store.settle(ctx, tx, reservationID, stateHeld, stateReleased, nil, nil, now)
		if err != nil || !ok {
			return err
		}
		return s.store.unreserve(ctx, tx, userID, bytes, now)
	})
	if err != nil {
		return fmt.Errorf("release storage reservation %s: %w", reservationID, err)
	}
	return nil
}

// Free implements Quota: the object's bytes stop counting (a video moved
// to the trash). Calling it again frees nothing, and collects bytes that a
// late Charge added in between, so the videos service may call it again
// when it purges.
func (s *Service) Free(ctx context.Context, userID, object string) (int64, error) {
	if err := checkUser(userID); err != nil {
		return 0, err
	}
	if err := checkObject(object); err != nil {
		return 0, err
	}
	now := micros(s.now())
	var freed int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		b, ok, err := s.store.deleteObject(ctx, tx, userID, object)
		if err != nil || !ok {
			freed = 0
			return err
		}
		freed = b
		return s.store.addUsed(ctx, tx, userID, -b, now)
	})
	if err != nil {
		return 0, fmt.Errorf("free storage object %s: %w", object, err)
	}
	return freed, nil
}

// Charge implements Quota. It adds bytes to the object unconditionally,
// even past the quota: it is for small files derived after the upload was
// admitted (posters), which must not fail an upload that has succeeded; a
// user pushed over the quota this way cannot reserve again until bytes are
// freed. Large derived files (renditions) should be admitted like uploads
// instead, with Reserve and a Commit into the same object. Charge is not
// idempotent, so the HTTP client does not retry it.
func (s *Service) Charge(ctx context.Context, userID, object string, bytes int64) error {
	if err := checkUser(userID); err != nil {
		return err
	}
	if err := checkObject(object); err != nil {
		return err
	}
	if bytes < 0 || bytes > MaxBytes {
		return invalid("bytes", fmt.Sprintf("must be between 0 and %d", MaxBytes))
	}
	now := micros(s.now())
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.store.ensureAccount(ctx, tx, userID, now); err != nil {
			return err
		}
		if err := s.store.addUsed(ctx, tx, userID, bytes, now); err != nil {
			return err
		}
		return s.store.addObject(ctx, tx, userID, object, bytes, now)
	})
	if err != nil {
		return fmt.Errorf("charge storage: %w", err)
	}
	return nil
}

// Usage implements Quota.
func (s *Service) Usage(ctx context.Context, userID string) (Usage, error) {
	if err := checkUser(userID); err != nil {
		return Usage{}, err
	}
	u, err := s.store.account(ctx, s.db.R, userID)
	if err != nil {
		return Usage{}, fmt.Errorf("storage usage: %w", err)
	}
	return u, nil
}

// Check is Usage for the public routes: it records a CHECK_STORAGE event
// for the caller in ctx, about userID.
func (s *Service) Check(ctx context.Context, userID string) (Usage, error) {
	u, err := s.Usage(ctx, userID)
	if err != nil {
		return Usage{}, err
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "CHECK_STORAGE", outbox.Success,
		fmt.Sprintf("checked storage: %d of %d bytes used", u.UsedBytes, u.QuotaBytes)).On(userID).
		With("used_bytes", u.UsedBytes).With("quota_bytes", u.QuotaBytes))
	return u, nil
}

// SetQuota implements Quota. Lowering a quota below what the user stores
// is allowed: nothing is deleted, but no reservation fits until bytes are
// freed.
func (s *Service) SetQuota(ctx context.Context, userID string, quota int64) error {
	if err := checkUser(userID); err != nil {
		return err
	}
	if quota < Unlimited || quota > MaxBytes {
		return invalid("quota_bytes", "must be a byte count, or -1 for unlimited")
	}
	if err := s.store.setQuota(ctx, s.db.W, userID, quota, micros(s.now())); err != nil {
		return fmt.Errorf("set storage quota: %w", err)
	}
	return nil
}

// Sweep releases reservations whose time is up and forgets settled ones
// after a day. Run it periodically; it is safe to run in several replicas
// at once (each reservation is settled by exactly one of them).
func (s *Service) Sweep(ctx context.Context) error {
	now := micros(s.now())
	total := 0
	for {
		var n int
		err := s.db.Tx(ctx, func(tx *sql.Tx) error {
			per, count, err := s.store.expire(ctx, tx, now, sweepBatch)
			if err != nil {
				return err
			}
			n = count
			// Users in a fixed order, so two sweeping replicas lock
			// accounts in the same order on PostgreSQL.
			for _, user := range sortedKeys(per) {
				if err := s.store.unreserve(ctx, tx, user, per[user], now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sweep storage reservations: %w", err)
		}
		total += n
		if n < sweepBatch {
			break
		}
	}
	if total > 0 {
		s.log.Info("released expired storage reservations", "count", total)
	}
	if err := s.store.forgetSettled(ctx, s.db.W, now-settledRetention.Microseconds()); err != nil {
		return fmt.Errorf("sweep storage reservations: %w", err)
	}
	return nil
}

// checkUser accepts only canonical (lower-case, hyphenated) UUIDs, the
// form the users service issues: another spelling of the same id would
// otherwise be a second account with a quota of its own.
func checkUser(id string) error {
	if !canonicalUUID(id) {
		return ErrInvalidUserID
	}
	return nil
}

// checkReservationID accepts only canonical UUIDs, which is all this
// service hands out.
func checkReservationID(id string) error {
	if !canonicalUUID(id) {
		return invalid("reservation_id", "must be a UUID")
	}
	return nil
}

func canonicalUUID(s string) bool {
	u, err := uuid.Parse(s)
	return err == nil && u.String() == s
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func checkObject(object string) error {
	if object == "" || len(object) > MaxObjectLen {
		return invalid("object", fmt.Sprintf("must have 1 to %d bytes", MaxObjectLen))
	}
	return nil
}

func invalid(field, msg string) error {
	return ErrInvalid.WithMsg(field + " " + msg).WithFields(map[string]string{field: msg})
}

func micros(t time.Time) int64     { return t.UnixMicro() }
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }
