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
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/reserve"
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
	ErrInvalid = reserve.ErrInvalid
	// ErrInvalidUserID is a user id that is not a UUID.
	ErrInvalidUserID = reserve.ErrInvalidUserID
)

// Limits on arguments.
const (
	// MaxBytes is the largest byte count any call accepts (1 PiB).
	MaxBytes = reserve.MaxBytes
	// MaxTTL is the longest a reservation may be held. Resumable uploads
	// that pause for longer re-reserve when they resume.
	MaxTTL = reserve.MaxTTL
	// MaxObjectLen bounds an object key.
	MaxObjectLen = 512
	// Unlimited as a quota means no limit.
	Unlimited = int64(-1)
)

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
	// Renew pushes a held reservation's expiry to ttl from now: the lease
	// of a holder still at work (see reserve.Ledger.Renew). A reservation
	// no longer held is ErrReservationSettled; an unknown one
	// ErrReservationNotFound.
	Renew(ctx context.Context, reservationID string, ttl time.Duration) error
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

	// For the consistency check (audit.go):

	// Accounts lists a page of accounts after a user id, with the bytes
	// each counts and what its objects add up to.
	Accounts(ctx context.Context, after string, limit int) ([]reserve.Account, error)
	// Objects lists a page of a user's objects after a key.
	Objects(ctx context.Context, userID, after string, limit int) ([]reserve.Object, error)
	// Correct applies corrections to a user's objects (each only if its
	// bytes are still what the check saw) and sets the bytes the account
	// counts to the sum of its objects; it returns how many applied.
	Correct(ctx context.Context, userID string, fixes []reserve.Correction) (int, error)
	// Lapsed counts the reservations held more than grace past their
	// expiry.
	Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error)
	// Sweep releases the reservations whose time is up.
	Sweep(ctx context.Context) error
}

// Reservation is bytes held against a user's quota until it is committed,
// released or expires. Its Day is always empty: the quota has no days.
type Reservation = reserve.Hold

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
	ledger *reserve.Ledger
	events *outbox.Outbox
	log    *slog.Logger
	now    func() time.Time
}

var _ Quota = (*Service)(nil)

// New returns the service on db (migrated with Migrations), recording
// activity events in events.
func New(db *sqldb.DB, events *outbox.Outbox, cfg Config, log *slog.Logger) *Service {
	st := &store{Table: "storage_reservations", db: db, defaultQuota: cfg.DefaultQuota}
	return &Service{
		db: db, store: st, events: events, log: log, now: time.Now,
		ledger: reserve.New(db, st, reserve.Config{
			Name: "storage reservation", NotFound: ErrReservationNotFound, Settled: ErrReservationSettled,
		}, log),
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
	return s.reserve(ctx, reserve.NewID(), userID, bytes, ttl)
}

// reserve is Reserve with the reservation id chosen by the caller: the
// HTTP client picks it so that a retried request finds the reservation its
// first attempt made instead of reserving twice.
func (s *Service) reserve(ctx context.Context, id, userID string, bytes int64, ttl time.Duration) (Reservation, error) {
	now := s.now()
	return s.ledger.Reserve(ctx, Reservation{ID: id, UserID: userID, Bytes: bytes}, ttl, now, func(ctx context.Context, tx *sql.Tx, h Reservation) error {
		if err := s.store.ensureAccount(ctx, tx, h.UserID, micros(now)); err != nil {
			return err
		}
		ok, err := s.store.tryReserve(ctx, tx, h.UserID, h.Bytes, micros(now))
		if err != nil || ok {
			return err
		}
		u, err := s.store.account(ctx, tx, h.UserID)
		if err != nil {
			return err
		}
		e := s.event(ctx, "QUOTA_EXCEEDED", outbox.Denied,
			fmt.Sprintf("storage quota exceeded: %d bytes requested, %d of %d available", h.Bytes, u.AvailableBytes, u.QuotaBytes)).
			ForUser(h.UserID).On(h.UserID).With("requested_bytes", h.Bytes).With("used_bytes", u.UsedBytes).
			With("reserved_bytes", u.ReservedBytes).With("quota_bytes", u.QuotaBytes)
		// The refusal commits with its event: nothing else changed.
		if err := s.events.Add(ctx, tx, e); err != nil {
			return err
		}
		return reserve.Refuse(quotaError(h.Bytes, u))
	})
}

func quotaError(bytes int64, u Usage) error {
	return ErrQuotaExceeded.WithMsg(fmt.Sprintf("the storage quota would be exceeded: %d bytes requested, %d of %d bytes available",
		bytes, u.AvailableBytes, u.QuotaBytes))
}

// Commit implements Quota. The actual size is recorded exactly: less than
// reserved gives the difference back, more must fit under the quota (else
// ErrQuotaExceeded and the reservation stays held, for the caller to
// release). A reservation that expired before its Commit is admitted
// again against the quota as it stands (see reserve.Ledger.Commit); when
// there is no room, the caller must discard the object.
func (s *Service) Commit(ctx context.Context, reservationID string, actualBytes int64, object string) error {
	if err := checkObject(object); err != nil {
		return err
	}
	t := s.now()
	now := micros(t)
	var refused struct {
		userID string
		u      Usage
	}
	err := s.ledger.Commit(ctx, reservationID, reserve.Settlement{Actual: actualBytes, Object: object}, t,
		func(ctx context.Context, tx *sql.Tx, h Reservation, actual int64) error {
			fits, err := s.store.tryAdmit(ctx, tx, h.UserID, h.Bytes, actual, now)
			if err != nil {
				return err
			}
			if !fits {
				u, err := s.store.account(ctx, tx, h.UserID)
				if err != nil {
					return err
				}
				refused.userID, refused.u = h.UserID, u
				return errRefused
			}
			return s.store.addObject(ctx, tx, h.UserID, object, actual, now)
		})
	if errors.Is(err, errRefused) {
		// The transaction rolled back, so the event goes on its own.
		s.events.RecordOrLog(ctx, s.event(ctx, "QUOTA_EXCEEDED", outbox.Denied,
			fmt.Sprintf("storage quota exceeded at commit: %d bytes stored, %d of %d available", actualBytes, refused.u.AvailableBytes, refused.u.QuotaBytes)).
			ForUser(refused.userID).On(object).With("actual_bytes", actualBytes).With("quota_bytes", refused.u.QuotaBytes))
		return quotaError(actualBytes, refused.u)
	}
	return err
}

// errRefused rolls back a transaction whose conditional write refused.
var errRefused = errors.New("refused")

// Release implements Quota.
func (s *Service) Release(ctx context.Context, reservationID string) error {
	return s.ledger.Release(ctx, reservationID, s.now())
}

// Renew implements Quota.
func (s *Service) Renew(ctx context.Context, reservationID string, ttl time.Duration) error {
	_, err := s.ledger.Renew(ctx, reservationID, ttl, s.now())
	return err
}

// Free implements Quota: the object's bytes stop counting (a video moved
// to the trash). Calling it again frees nothing, and collects bytes that a
// late Charge added in between, so the videos service may call it again
// when it purges.
func (s *Service) Free(ctx context.Context, userID, object string) (int64, error) {
	if err := reserve.CheckUser(userID); err != nil {
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
	if err := reserve.CheckUser(userID); err != nil {
		return err
	}
	if err := checkObject(object); err != nil {
		return err
	}
	if bytes < 0 || bytes > MaxBytes {
		return reserve.Invalid("bytes", fmt.Sprintf("must be between 0 and %d", MaxBytes))
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
	if err := reserve.CheckUser(userID); err != nil {
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
	if err := reserve.CheckUser(userID); err != nil {
		return err
	}
	if quota < Unlimited || quota > MaxBytes {
		return reserve.Invalid("quota_bytes", "must be a byte count, or -1 for unlimited")
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
	_, err := s.ledger.Sweep(ctx, s.now())
	return err
}

func checkObject(object string) error {
	if object == "" || len(object) > MaxObjectLen {
		return reserve.Invalid("object", fmt.Sprintf("must have 1 to %d bytes", MaxObjectLen))
	}
	return nil
}

func micros(t time.Time) int64     { return t.UnixMicro() }
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }
