package web

import (
	"context"
	"slices"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/users"
)

// accountTTL is how long the pages believe an account they have read on
// their own: the same few seconds within which a disabled account or a
// demotion bites on every replica without a Watch (authn's standing), so
// an account change shows on the pages no later than it takes effect.
// With the verifier's Watch, an account is believed until one changes.
const accountTTL = 3 * time.Second

// accountsMax bounds each of the two caches below: a few hundred bytes an
// entry, a few MiB at most, for many thousand active users.
const accountsMax = 16384

// accounts remembers the two reads of the users service that nearly every
// page makes: the signed-in account (its name in the header, its role) and
// the names of the owners of the videos it lists. Each would otherwise be
// one more round trip to the users service per page; a user opens several
// pages a minute and a feed page shows the same few owners to everyone.
// An entry is believed while the verifier's watch sees no account change
// (for accountTTL without one). Changes made through the pages forget the
// account at once. The admin pages read the accounts they change afresh,
// not from here.
type accounts struct {
	src   Users
	users *authn.WatchedCache[users.User]
	names *authn.WatchedCache[string]
}

func newAccounts(src Users, w *authn.Watch) *accounts {
	return &accounts{
		src:   src,
		users: authn.NewWatchedCache[users.User](w, accountsMax, accountTTL),
		names: authn.NewWatchedCache[string](w, accountsMax, accountTTL),
	}
}

// get returns the account id.
func (c *accounts) get(ctx context.Context, id string) (users.User, error) {
	if u, ok := c.users.Get(id); ok {
		return u, nil
	}
	stamp := c.users.Stamp()
	u, err := c.src.Get(ctx, id)
	if err != nil {
		return users.User{}, err
	}
	c.users.Add(id, u, stamp)
	c.names.Add(id, u.Username, stamp)
	return u, nil
}

// usernames returns the usernames of the accounts among ids, asking the
// users service (once) only for those it does not remember. On an error
// it returns what it found.
func (c *accounts) usernames(ctx context.Context, ids []string) (map[string]string, error) {
	out := make(map[string]string, len(ids))
	var missing []string
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		if n, ok := c.names.Get(id); ok {
			out[id] = n
		} else if !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	stamp := c.names.Stamp()
	found, err := c.src.Names(ctx, missing)
	for id, n := range found {
		c.names.Add(id, n, stamp)
		out[id] = n
	}
	return out, err
}

// forget drops what is remembered of the account id, after a page changed
// it.
func (c *accounts) forget(id string) {
	c.users.Remove(id)
	c.names.Remove(id)
}
