package videos

import (
	"context"
	"sync"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// DefaultReserveLease is how long the reservations of work in a process
// outlive their last renewal, unless configured (Config.ReserveLease).
const DefaultReserveLease = 2 * time.Minute

// Leases: the reservations of work that runs in this process (a
// multipart upload arriving and being finalised, a poster or rendition
// being stored) are taken for a lease, not for as long as the work may
// last, and renewed every quarter of it while the work goes on. A process
// that is killed stops renewing, so its holds lapse a lease later and the
// storage and usage sweeps give them back: the user is not locked out for
// hours by an upload that no longer exists. Live work is never cut short
// by that, since it renews; ReserveTTL bounds how long it may (after it
// the holds lapse, and a late commit is admitted anew if there is room).
// Holds of other replicas are untouched: each renews its own.

// renewer renews one reservation for ttl.
type renewer func(ctx context.Context, id string, ttl time.Duration) error

// leaseHold is a reservation kept alive and how to renew it.
type leaseHold struct {
	id    string
	renew renewer
}

// rowLease is the lease of a video row that work in this process holds (a
// finalisation's, a restore's: lease_until), renewed by renew, which
// reports false once the row is no longer in that work's state: then
// there is nothing left to keep.
func (s *Service) rowLease(id string, renew func(ctx context.Context, q sqldb.Querier, id string, until int64) (bool, error)) leaseHold {
	return leaseHold{id: id, renew: func(ctx context.Context, id string, ttl time.Duration) error {
		held, err := renew(ctx, s.db.W, id, micros(s.now().Add(ttl)))
		if err == nil && !held {
			return ErrVideoNotFound
		}
		return err
	}}
}

// keepAlive renews holds every quarter of the lease until the returned
// stop is called (any number of times) or ReserveTTL has passed. A hold
// that is no longer held (committed, released, or lapsed after all) is
// dropped; a renewal that fails otherwise (the service is down) is tried
// again at the next tick, while the lease may still hold.
func (s *Service) keepAlive(holds ...leaseHold) (stop func()) {
	lease := s.cfg.ReserveLease
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(lease / 4)
		defer t.Stop()
		end := time.NewTimer(s.cfg.ReserveTTL)
		defer end.Stop()
		live := holds
		for len(live) > 0 {
			select {
			case <-done:
				return
			case <-end.C:
				return
			case <-t.C:
			}
			kept := live[:0]
			for _, h := range live {
				ctx, cancel := context.WithTimeout(context.Background(), lease/4)
				err := h.renew(ctx, h.id, lease)
				cancel()
				switch k := errs.KindOf(err); {
				case err == nil:
					kept = append(kept, h)
				case k == errs.Conflict || k == errs.NotFound:
					// Settled meanwhile: nothing left to keep.
				default:
					s.log.Warn("renew a reservation's lease", "reservation", h.id, "err", err)
					kept = append(kept, h)
				}
			}
			live = kept
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
