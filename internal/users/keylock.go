package users

import (
	"context"
	"sync"
)

// keyLocks serialises work per key within the process, waiting without
// holding anything else: a login attempt waits here for the attempts on
// its subjects before it takes a database connection, so a burst on one
// subject (many logins from one address) queues in memory, one of them at
// a time holding a write connection on the subject's database lock,
// instead of every waiter holding one and starving the pool's other
// writes. Across processes the database lock still serialises.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while the key is locked
	refs int           // holders and waiters
}

// lock locks every key (sorted and without repeats, so that two callers
// cannot deadlock) and returns the function that unlocks them. It gives
// up with ctx's error, holding nothing.
func (k *keyLocks) lock(ctx context.Context, keys []string) (unlock func(), err error) {
	var held []string
	unlock = func() {
		for i := len(held) - 1; i >= 0; i-- {
			k.release(held[i], true)
		}
	}
	for _, key := range keys {
		l := k.join(key)
		select {
		case l.ch <- struct{}{}:
			held = append(held, key)
		case <-ctx.Done():
			k.release(key, false)
			unlock()
			return nil, ctx.Err()
		}
	}
	return unlock, nil
}

// join counts the caller in on key's lock, making it if need be.
func (k *keyLocks) join(key string) *keyLock {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{ch: make(chan struct{}, 1)}
		k.m[key] = l
	}
	l.refs++
	return l
}

// release counts the caller out of key's lock, unlocking it if the caller
// held it, and forgets the lock when nobody holds or waits for it.
func (k *keyLocks) release(key string, held bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.m[key]
	if held {
		<-l.ch
	}
	if l.refs--; l.refs == 0 {
		delete(k.m, key)
	}
}
