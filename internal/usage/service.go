// Package usage is the daily usage service: per-user, per-UTC-day counters
// of upload volume and egress (bytes delivered to a viewer), and their
// limits. Upload volume is reserved when an upload starts, with one
// conditional write in the database so that concurrent uploads cannot
// overshoot the limit, then committed with the real size or released.
// Egress is recorded after the fact, in batches aggregated by EgressMeter
// on the streaming side. Days are UTC; counters reset at 00:00:00 UTC.
package usage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/reserve"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Errors of the usage service.
var (
	// ErrDailyLimit refuses upload volume or egress over a daily limit
	// (429). Returned copies carry RetryAfter: the time until the next
	// 00:00:00 UTC, when the counters reset.
	ErrDailyLimit = errs.New(errs.RateLimited, "daily_limit_reached", "the daily limit is reached; it resets at 00:00 UTC")
	// ErrReservationNotFound is a commit of an unknown reservation.
	ErrReservationNotFound = errs.New(errs.NotFound, "reservation_not_found", "no such upload reservation")
	// ErrReservationSettled is a commit of a released reservation, or one
	// committed with another size.
	ErrReservationSettled = errs.New(errs.Conflict, "reservation_settled", "the upload reservation was already released or committed differently")
	// ErrInvalid is a call with out-of-range arguments (a caller's bug).
	ErrInvalid = reserve.ErrInvalid
	// ErrInvalidUserID is a user id that is not a UUID.
	ErrInvalidUserID = reserve.ErrInvalidUserID
	// ErrInvalidRange is a bad from/to day range.
	ErrInvalidRange = errs.New(errs.Invalid, "invalid_query", "from and to must be days (YYYY-MM-DD), from not after to")
)

// Limits on arguments.
const (
	// MaxBytes is the largest byte count any call accepts (1 PiB), far
	// from int64 overflow in any sum.
	MaxBytes = reserve.MaxBytes
	// MaxTTL is the longest an upload reservation may be held.
	MaxTTL = reserve.MaxTTL
	// MaxHistoryDays bounds the range of a history query.
	MaxHistoryDays = 366
	// Unlimited as a limit or an allowance means no limit.
	Unlimited = int64(-1)
	// DayLayout is how days are written: in the API and in the database.
	DayLayout = time.DateOnly
)

const (
	// batchRetention is how long egress batch ids are remembered: a meter
	// retrying a batch for longer than that risks counting it twice.
	batchRetention = 48 * time.Hour
	serviceName    = "usage"
	maxBatchIDLen  = 128
)

// Meter is what other services call: the videos service to admit uploads
// and record egress, the users service to set overrides. *Service (in
// process) and *Client (over HTTP) both implement it and pass the same
// contract tests.
type Meter interface {
	// ReserveUpload holds bytes of today's upload volume for ttl, or fails
	// with ErrDailyLimit (429, RetryAfter until midnight UTC).
	ReserveUpload(ctx context.Context, userID string, bytes int64, ttl time.Duration) (Reservation, error)
	// CommitUpload records the real size on the day the reservation was
	// made. Idempotent for the same size.
	CommitUpload(ctx context.Context, reservationID string, actualBytes int64) error
	// ReleaseUpload gives a reservation back (the upload failed).
	// Idempotent; releasing a committed, expired or unknown reservation
	// does nothing. Deleting a video later never gives volume back.
	ReleaseUpload(ctx context.Context, reservationID string) error
	// RenewUpload pushes a held reservation's expiry to ttl from now: the
	// lease of an upload still at work (see reserve.Ledger.Renew). One no
	// longer held is ErrReservationSettled; an unknown one
	// ErrReservationNotFound.
	RenewUpload(ctx context.Context, reservationID string, ttl time.Duration) error
	// AddEgress adds delivered bytes per user to today's counters, in one
	// transaction. A non-empty batchID makes it idempotent: a batch with
	// an id seen in the last two days is not counted again.
	AddEgress(ctx context.Context, batchID string, bytes map[string]int64) error
	// Allowance returns the bytes the user may still receive today, or
	// -1 when unlimited.
	Allowance(ctx context.Context, userID string) (int64, error)
	// Today returns the user's counters and limits for today.
	Today(ctx context.Context, userID string) (Status, error)
	// SetLimits sets per-user overrides; a nil field keeps its value.
	SetLimits(ctx context.Context, userID string, l Limits) error
	// Lapsed counts the upload reservations held more than grace past
	// their expiry (for the consistency check).
	Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error)
	// Sweep releases the upload reservations whose time is up.
	Sweep(ctx context.Context) error
}

// Reservation is upload volume held until it is committed, released or
// expires. Its Day is the UTC day it counts on.
type Reservation = reserve.Hold

// Limits are per-user overrides in bytes per day, -1 unlimited; nil keeps
// the current value.
type Limits struct {
	DailyUpload *int64 `json:"daily_upload_bytes,omitempty"`
	DailyEgress *int64 `json:"daily_egress_bytes,omitempty"`
}

// UploadCounter is a day's upload volume. ReservedBytes are uploads in
// progress; LimitBytes is -1 when unlimited.
type UploadCounter struct {
	UsedBytes     int64 `json:"used_bytes"`
	ReservedBytes int64 `json:"reserved_bytes"`
	LimitBytes    int64 `json:"limit_bytes"`
}

// EgressCounter is a day's egress. LimitBytes is -1 when unlimited.
type EgressCounter struct {
	UsedBytes  int64 `json:"used_bytes"`
	LimitBytes int64 `json:"limit_bytes"`
}

// Status is a user's counters on one day. The limits are the current
// ones: past limits are not kept.
type Status struct {
	Day      string        `json:"day"`
	ResetsAt time.Time     `json:"resets_at"`
	Upload   UploadCounter `json:"upload"`
	Egress   EgressCounter `json:"egress"`
}

// Config configures the service.
type Config struct {
	// DailyUpload and DailyEgress are the limits of users without an
	// override, in bytes per UTC day; -1 is unlimited.
	DailyUpload, DailyEgress int64
}

// Service implements the usage service.
type Service struct {
	db     *sqldb.DB
	store  *store
	ledger *reserve.Ledger
	events *outbox.Outbox
	log    *slog.Logger
	now    func() time.Time
}

var _ Meter = (*Service)(nil)

// New returns the service on db (migrated with Migrations), recording
// activity events in events.
func New(db *sqldb.DB, events *outbox.Outbox, cfg Config, log *slog.Logger) *Service {
	st := &store{Table: "usage_reservations", db: db, defaultUpload: cfg.DailyUpload, defaultEgr: cfg.DailyEgress}
	return &Service{
		db: db, store: st, events: events, log: log, now: time.Now,
		ledger: reserve.New(db, st, reserve.Config{
			Name: "upload reservation", NotFound: ErrReservationNotFound, Settled: ErrReservationSettled,
		}, log),
	}
}

// SetClock replaces the clock, for tests of day rollover and expiry.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Day returns the UTC day of t as written in the API.
func Day(t time.Time) string { return t.UTC().Format(DayLayout) }

// NextReset returns the next 00:00:00 UTC after t.
func NextReset(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}

// LimitError is ErrDailyLimit with the time until the counters reset, as
// of now, and msg (if not empty) as its message. The streaming side uses
// it to refuse a viewer whose allowance is spent.
func LimitError(now time.Time, msg string) error {
	e := ErrDailyLimit.WithRetryAfter(NextReset(now).Sub(now))
	if msg != "" {
		e = e.WithMsg(msg)
	}
	return e
}

func (s *Service) event(ctx context.Context, action, outcome, desc string) outbox.Event {
	return outbox.NewEvent(ctx, serviceName, action, outcome, desc)
}

// ReserveUpload implements Meter. The decision is the conditional UPDATE
// in store.tryReserve; a refusal records a LIMIT_EXCEEDED event.
func (s *Service) ReserveUpload(ctx context.Context, userID string, bytes int64, ttl time.Duration) (Reservation, error) {
	return s.reserve(ctx, reserve.NewID(), userID, bytes, ttl)
}

// reserve is ReserveUpload with an id chosen by the caller (the HTTP
// client), so that a retry finds its first attempt's reservation.
func (s *Service) reserve(ctx context.Context, id, userID string, bytes int64, ttl time.Duration) (Reservation, error) {
	now := s.now()
	want := Reservation{ID: id, UserID: userID, Bytes: bytes, Day: Day(now)}
	return s.ledger.Reserve(ctx, want, ttl, now, func(ctx context.Context, tx *sql.Tx, h Reservation) error {
		limit, _, err := s.store.limits(ctx, tx, h.UserID)
		if err != nil {
			return err
		}
		if err := s.store.ensureDay(ctx, tx, h.UserID, h.Day, micros(now)); err != nil {
			return err
		}
		ok, err := s.store.tryReserve(ctx, tx, h.UserID, h.Day, h.Bytes, limit, micros(now))
		if err != nil || ok {
			return err
		}
		d, err := s.store.day(ctx, tx, h.UserID, h.Day)
		if err != nil {
			return err
		}
		e := s.event(ctx, "LIMIT_EXCEEDED", outbox.Denied,
			fmt.Sprintf("daily upload limit reached: %d bytes requested, %d used and %d reserved of %d", h.Bytes, d.UploadUsed, d.UploadReserved, limit)).
			ForUser(h.UserID).On(h.UserID).With("limit", "upload").With("requested_bytes", h.Bytes).
			With("used_bytes", d.UploadUsed).With("reserved_bytes", d.UploadReserved).With("limit_bytes", limit).With("day", h.Day)
		// The refusal commits with its event: nothing else changed.
		if err := s.events.Add(ctx, tx, e); err != nil {
			return err
		}
		return reserve.Refuse(uploadLimitError(now, h.Bytes, UploadCounter{UsedBytes: d.UploadUsed, ReservedBytes: d.UploadReserved, LimitBytes: limit}))
	})
}

func uploadLimitError(now time.Time, bytes int64, c UploadCounter) error {
	return LimitError(now, fmt.Sprintf("the daily upload limit would be exceeded: %d bytes requested, %d of %d bytes left today; it resets at 00:00 UTC",
		bytes, max(0, c.LimitBytes-c.UsedBytes-c.ReservedBytes), c.LimitBytes))
}

// errRefused rolls back a transaction whose conditional write refused.
var errRefused = errors.New("refused")

// CommitUpload implements Meter. The volume counts on the day the
// reservation was made (an upload that crosses midnight counts on the day
// it started). A size above the reservation must fit under the limit, else
// ErrDailyLimit and the reservation stays held, for the caller to release.
// A reservation that expired is admitted again if there is room.
func (s *Service) CommitUpload(ctx context.Context, reservationID string, actualBytes int64) error {
	now := s.now()
	var refused struct {
		h Reservation
		c UploadCounter
	}
	err := s.ledger.Commit(ctx, reservationID, reserve.Settlement{Actual: actualBytes}, now,
		func(ctx context.Context, tx *sql.Tx, h Reservation, actual int64) error {
			limit, _, err := s.store.limits(ctx, tx, h.UserID)
			if err != nil {
				return err
			}
			fits, err := s.store.tryAdmit(ctx, tx, h.UserID, h.Day, h.Bytes, actual, limit, micros(now))
			if err != nil || fits {
				return err
			}
			d, err := s.store.day(ctx, tx, h.UserID, h.Day)
			if err != nil {
				return err
			}
			refused.h = h
			refused.c = UploadCounter{UsedBytes: d.UploadUsed, ReservedBytes: d.UploadReserved - h.Bytes, LimitBytes: limit}
			return errRefused
		})
	if errors.Is(err, errRefused) {
		// The transaction rolled back, so the event goes on its own.
		s.events.RecordOrLog(ctx, s.event(ctx, "LIMIT_EXCEEDED", outbox.Denied,
			fmt.Sprintf("daily upload limit reached at commit: %d bytes uploaded, limit %d", actualBytes, refused.c.LimitBytes)).
			ForUser(refused.h.UserID).On(refused.h.UserID).With("limit", "upload").With("actual_bytes", actualBytes).
			With("limit_bytes", refused.c.LimitBytes).With("day", refused.h.Day))
		return uploadLimitError(now, actualBytes, refused.c)
	}
	return err
}

// ReleaseUpload implements Meter.
func (s *Service) ReleaseUpload(ctx context.Context, reservationID string) error {
	return s.ledger.Release(ctx, reservationID, s.now())
}

// RenewUpload implements Meter.
func (s *Service) RenewUpload(ctx context.Context, reservationID string, ttl time.Duration) error {
	_, err := s.ledger.Renew(ctx, reservationID, ttl, s.now())
	return err
}

// AddEgress implements Meter. Entries that cannot be a user's bytes (an
// id that is not a UUID, a count that is not positive) are skipped and
// logged rather than refused, so that one bad entry cannot make a meter
// retry its whole batch for ever.
func (s *Service) AddEgress(ctx context.Context, batchID string, bytes map[string]int64) error {
	if len(batchID) > maxBatchIDLen {
		return reserve.Invalid("batch_id", fmt.Sprintf("must have at most %d bytes", maxBatchIDLen))
	}
	users := make([]string, 0, len(bytes))
	for u, n := range bytes {
		if !reserve.CanonicalUUID(u) || n <= 0 || n > MaxBytes {
			s.log.Warn("egress entry skipped", "user_id", u, "bytes", n)
			continue
		}
		users = append(users, u)
	}
	if len(users) == 0 {
		return nil
	}
	// A fixed order, so concurrent batches from several streaming
	// replicas lock rows in the same order on PostgreSQL.
	slices.Sort(users)
	now := s.now()
	day := Day(now)
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if batchID != "" {
			fresh, err := s.store.claimBatch(ctx, tx, batchID, micros(now))
			if err != nil || !fresh {
				return err
			}
		}
		for _, u := range users {
			if err := s.store.addEgress(ctx, tx, u, day, bytes[u], micros(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add egress batch of %d users: %w", len(users), err)
	}
	return nil
}

// Allowance implements Meter.
func (s *Service) Allowance(ctx context.Context, userID string) (int64, error) {
	st, err := s.Today(ctx, userID)
	if err != nil {
		return 0, err
	}
	if st.Egress.LimitBytes < 0 {
		return Unlimited, nil
	}
	return max(0, st.Egress.LimitBytes-st.Egress.UsedBytes), nil
}

// Today implements Meter.
func (s *Service) Today(ctx context.Context, userID string) (Status, error) {
	if err := reserve.CheckUser(userID); err != nil {
		return Status{}, err
	}
	d, up, eg, err := s.store.today(ctx, s.db.R, userID, Day(s.now()))
	if err != nil {
		return Status{}, fmt.Errorf("usage today: %w", err)
	}
	return status(d, up, eg), nil
}

func status(d dayRow, upload, egress int64) Status {
	t, _ := time.Parse(DayLayout, d.Day)
	return Status{
		Day: d.Day, ResetsAt: NextReset(t),
		Upload: UploadCounter{UsedBytes: d.UploadUsed, ReservedBytes: d.UploadReserved, LimitBytes: upload},
		Egress: EgressCounter{UsedBytes: d.EgressUsed, LimitBytes: egress},
	}
}

// Check is Today for the public routes: it records a CHECK_BANDWIDTH
// event for the caller in ctx, about userID.
func (s *Service) Check(ctx context.Context, userID string) (Status, error) {
	st, err := s.Today(ctx, userID)
	if err != nil {
		return Status{}, err
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "CHECK_BANDWIDTH", outbox.Success,
		fmt.Sprintf("checked daily usage for %s: upload %d of %d bytes, egress %d of %d bytes", st.Day,
			st.Upload.UsedBytes, st.Upload.LimitBytes, st.Egress.UsedBytes, st.Egress.LimitBytes)).On(userID).
		With("day", st.Day))
	return st, nil
}

// History returns one Status per day from..to (inclusive, YYYY-MM-DD),
// oldest first, days without activity included as zeros. Empty bounds
// default to the 30 days up to today. It records a CHECK_BANDWIDTH event.
func (s *Service) History(ctx context.Context, userID, from, to string) ([]Status, error) {
	if err := reserve.CheckUser(userID); err != nil {
		return nil, err
	}
	first, last, err := dayRange(from, to, s.now())
	if err != nil {
		return nil, err
	}
	up, eg, err := s.store.limits(ctx, s.db.R, userID)
	if err != nil {
		return nil, fmt.Errorf("usage history: %w", err)
	}
	rows, err := s.store.days(ctx, userID, Day(first), Day(last))
	if err != nil {
		return nil, fmt.Errorf("usage history: %w", err)
	}
	byDay := make(map[string]dayRow, len(rows))
	for _, r := range rows {
		byDay[r.Day] = r
	}
	var out []Status
	for t := first; !t.After(last); t = t.AddDate(0, 0, 1) {
		d, ok := byDay[Day(t)]
		if !ok {
			d = dayRow{Day: Day(t)}
		}
		out = append(out, status(d, up, eg))
	}
	s.events.RecordOrLog(ctx, s.event(ctx, "CHECK_BANDWIDTH", outbox.Success,
		fmt.Sprintf("checked daily usage from %s to %s", Day(first), Day(last))).On(userID).
		With("from", Day(first)).With("to", Day(last)))
	return out, nil
}

// dayRange parses and bounds a history range.
func dayRange(from, to string, now time.Time) (time.Time, time.Time, error) {
	last, err := parseDay(to, now)
	if err != nil {
		return time.Time{}, time.Time{}, ErrInvalidRange.WithMsg("to must be a day such as 2025-03-14")
	}
	first, err := parseDay(from, last.AddDate(0, 0, -29))
	if err != nil {
		return time.Time{}, time.Time{}, ErrInvalidRange.WithMsg("from must be a day such as 2025-03-14")
	}
	if first.After(last) {
		return time.Time{}, time.Time{}, ErrInvalidRange.WithMsg("from must not be after to")
	}
	if last.Sub(first) >= MaxHistoryDays*24*time.Hour {
		return time.Time{}, time.Time{}, ErrInvalidRange.WithMsg(fmt.Sprintf("the range must span at most %d days", MaxHistoryDays))
	}
	return first, last, nil
}

// parseDay parses YYYY-MM-DD exactly (Go's parser accepts no other
// spelling), or returns the day of def when s is empty.
func parseDay(s string, def time.Time) (time.Time, error) {
	if s == "" {
		return time.Parse(DayLayout, Day(def))
	}
	t, err := time.Parse(DayLayout, s)
	if err != nil || t.Format(DayLayout) != s {
		return time.Time{}, errors.New("bad day")
	}
	// A day's resets_at is the next midnight, which must still be a time
	// JSON can carry (year 9999 at most); no usage predates 1970.
	if t.Year() < 1970 || t.Year() > 9998 {
		return time.Time{}, errors.New("day out of range")
	}
	return t, nil
}

// SetLimits implements Meter.
func (s *Service) SetLimits(ctx context.Context, userID string, l Limits) error {
	if err := reserve.CheckUser(userID); err != nil {
		return err
	}
	for name, v := range map[string]*int64{"daily_upload_bytes": l.DailyUpload, "daily_egress_bytes": l.DailyEgress} {
		if v != nil && (*v < Unlimited || *v > MaxBytes) {
			return reserve.Invalid(name, "must be a byte count, or -1 for unlimited")
		}
	}
	if l.DailyUpload == nil && l.DailyEgress == nil {
		return nil
	}
	if err := s.store.setLimits(ctx, s.db.W, userID, l.DailyUpload, l.DailyEgress, micros(s.now())); err != nil {
		return fmt.Errorf("set usage limits: %w", err)
	}
	return nil
}

// Sweep releases upload reservations whose time is up and forgets settled
// reservations and old egress batch ids. Safe to run in several replicas.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	if _, err := s.ledger.Sweep(ctx, now); err != nil {
		return err
	}
	if err := s.store.forgetBatches(ctx, micros(now.Add(-batchRetention))); err != nil {
		return fmt.Errorf("sweep usage: %w", err)
	}
	return nil
}

func micros(t time.Time) int64     { return t.UnixMicro() }
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// Lapsed counts the upload reservations still held more than grace after
// their expiry: the sweep releases them within a minute when it runs.
func (s *Service) Lapsed(ctx context.Context, grace time.Duration) (reserve.Lapsed, error) {
	return s.ledger.Lapsed(ctx, s.now(), grace)
}
