package videos_test

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/reserve"
)

// ---------------------------------------------------------------------
// Fakes of the storage and usage services, with their semantics: atomic
// reservations that refuse over a limit, idempotent commit, release and
// free.

var (
	errQuota = errs.New(errs.TooLarge, "quota_exceeded", "the storage quota would be exceeded")
	errDaily = errs.New(errs.RateLimited, "daily_limit_reached", "the daily upload limit would be exceeded")
)

type heldRes struct {
	user  string
	bytes int64
}

type fakeQuota struct {
	mu       sync.Mutex
	limit    int64 // per user; -1 unlimited
	used     map[string]int64
	objects  map[string]int64 // user + "|" + object -> bytes
	held     map[string]heldRes
	done     map[string]bool
	freed    int // Free calls that freed bytes
	renewed  map[string]int
	maxSeen  int64 // the most any user ever had used + reserved
	failFree error
}

func newFakeQuota(limit int64) *fakeQuota {
	return &fakeQuota{limit: limit, used: map[string]int64{}, objects: map[string]int64{}, held: map[string]heldRes{}, done: map[string]bool{},
		renewed: map[string]int{}}
}

func (q *fakeQuota) reservedLocked(user string) int64 {
	var n int64
	for _, r := range q.held {
		if r.user == user {
			n += r.bytes
		}
	}
	return n
}

func (q *fakeQuota) Reserve(_ context.Context, user string, bytes int64, _ time.Duration) (reserve.Hold, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	total := q.used[user] + q.reservedLocked(user) + bytes
	if q.limit >= 0 && total > q.limit {
		return reserve.Hold{}, errQuota
	}
	q.maxSeen = max(q.maxSeen, total)
	id := uuid.NewString()
	q.held[id] = heldRes{user, bytes}
	return reserve.Hold{ID: id, UserID: user, Bytes: bytes}, nil
}

func (q *fakeQuota) Commit(_ context.Context, id string, actual int64, object string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	r, ok := q.held[id]
	if !ok {
		if q.done[id] {
			return nil
		}
		return errs.New(errs.Conflict, "reservation_settled", "settled")
	}
	delete(q.held, id)
	q.done[id] = true
	q.used[r.user] += actual
	q.objects[r.user+"|"+object] += actual
	return nil
}

func (q *fakeQuota) Release(_ context.Context, id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.held, id)
	return nil
}

func (q *fakeQuota) Renew(_ context.Context, id string, _ time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.held[id]; !ok {
		return errs.New(errs.Conflict, "reservation_settled", "settled")
	}
	q.renewed[id]++
	return nil
}

// renewals counts the renewals of the reservations held now.
func (q *fakeQuota) renewals() (held, renewed int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id := range q.held {
		held++
		renewed += q.renewed[id]
	}
	return held, renewed
}

func (q *fakeQuota) Free(_ context.Context, user, object string) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.failFree != nil {
		return 0, q.failFree
	}
	k := user + "|" + object
	b, ok := q.objects[k]
	if ok {
		delete(q.objects, k)
		q.used[user] -= b
		q.freed++
	}
	return b, nil
}

func (q *fakeQuota) state(user string) (used int64, held int, objects int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for k := range q.objects {
		if strings.HasPrefix(k, user+"|") {
			objects++
		}
	}
	return q.used[user], len(q.held), objects
}

type fakeLimit struct {
	mu          sync.Mutex
	failCommits int // CommitUpload calls that fail as if usage were down
	limit       int64
	used        map[string]int64
	held        map[string]heldRes
	done        map[string]bool
}

func newFakeLimit(limit int64) *fakeLimit {
	return &fakeLimit{limit: limit, used: map[string]int64{}, held: map[string]heldRes{}, done: map[string]bool{}}
}

func (l *fakeLimit) ReserveUpload(_ context.Context, user string, bytes int64, _ time.Duration) (reserve.Hold, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var reserved int64
	for _, r := range l.held {
		if r.user == user {
			reserved += r.bytes
		}
	}
	if l.limit >= 0 && l.used[user]+reserved+bytes > l.limit {
		return reserve.Hold{}, errDaily.WithRetryAfter(3 * time.Hour)
	}
	id := uuid.NewString()
	l.held[id] = heldRes{user, bytes}
	return reserve.Hold{ID: id, UserID: user, Bytes: bytes}, nil
}

func (l *fakeLimit) CommitUpload(_ context.Context, id string, actual int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failCommits > 0 {
		l.failCommits--
		return errs.ErrUnavailable
	}
	r, ok := l.held[id]
	if !ok {
		if l.done[id] {
			return nil
		}
		return errs.New(errs.Conflict, "reservation_settled", "settled")
	}
	delete(l.held, id)
	l.done[id] = true
	l.used[r.user] += actual
	return nil
}

func (l *fakeLimit) RenewUpload(_ context.Context, id string, _ time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.held[id]; !ok {
		return errs.New(errs.Conflict, "reservation_settled", "settled")
	}
	return nil
}

func (l *fakeLimit) ReleaseUpload(_ context.Context, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.held, id)
	return nil
}

func (l *fakeLimit) state(user string) (used int64, held int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used[user], len(l.held)
}

type fakeEgress struct {
	mu    sync.Mutex
	limit int64 // -1 unlimited
	used  map[string]int64
}

func newFakeEgress() *fakeEgress { return &fakeEgress{limit: -1, used: map[string]int64{}} }

func (e *fakeEgress) Allowance(_ context.Context, user string) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.limit < 0 {
		return -1, nil
	}
	return max(0, e.limit-e.used[user]), nil
}

func (e *fakeEgress) Add(user string, n int64) {
	e.mu.Lock()
	e.used[user] += n
	e.mu.Unlock()
}

func (e *fakeEgress) total(user string) int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.used[user]
}
