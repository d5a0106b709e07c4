package web

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/users"
)

// directory is a users service that only looks accounts up, keeping the
// ids it was asked for.
type directory struct {
	Users
	names map[string]string
	gets  []string
	asked [][]string
	err   error
}

func (d *directory) Get(_ context.Context, id string) (users.User, error) {
	d.gets = append(d.gets, id)
	if d.err != nil {
		return users.User{}, d.err
	}
	return users.User{ID: id, Username: d.names[id]}, nil
}

func (d *directory) Names(_ context.Context, ids []string) (map[string]string, error) {
	d.asked = append(d.asked, ids)
	out := map[string]string{}
	for _, id := range ids {
		if n, ok := d.names[id]; ok {
			out[id] = n
		}
	}
	return out, d.err
}

func TestAccountsRemember(t *testing.T) {
	ctx := t.Context()
	d := &directory{names: map[string]string{"a": "Ann", "b": "Bob", "c": "Cy"}}
	c := newAccounts(d, nil)

	// A page's owners: each id asked for once, however often it is listed.
	got, err := c.usernames(ctx, []string{"a", "b", "a", "gone", "b"})
	if err != nil || !maps.Equal(got, map[string]string{"a": "Ann", "b": "Bob"}) {
		t.Fatalf("names: %v %v", got, err)
	}
	if len(d.asked) != 1 || !slices.Equal(d.asked[0], []string{"a", "b", "gone"}) {
		t.Fatalf("asked %v", d.asked)
	}
	// The next page asks only for what is not remembered; an id that is no
	// account is asked again (it is no name to remember).
	got, _ = c.usernames(ctx, []string{"b", "c", "gone"})
	if !maps.Equal(got, map[string]string{"b": "Bob", "c": "Cy"}) || len(d.asked) != 2 || !slices.Equal(d.asked[1], []string{"c", "gone"}) {
		t.Fatalf("second page: %v, asked %v", got, d.asked)
	}
	if _, _ = c.usernames(ctx, []string{"a", "c"}); len(d.asked) != 2 {
		t.Fatalf("remembered names asked again: %v", d.asked)
	}

	// The signed-in account: read once, and its name is remembered too.
	for range 3 {
		if u, err := c.get(ctx, "d"); err != nil || u.ID != "d" {
			t.Fatalf("get: %v %v", u, err)
		}
	}
	if len(d.gets) != 1 {
		t.Fatalf("gets %v", d.gets)
	}
	d.names["a"] = "Annie"
	c.forget("a")
	if got, _ := c.usernames(ctx, []string{"a"}); got["a"] != "Annie" {
		t.Fatalf("a forgotten account's old name: %v", got)
	}
	c.forget("d")
	if _, _ = c.get(ctx, "d"); len(d.gets) != 2 {
		t.Fatalf("a forgotten account was not read again: %v", d.gets)
	}

	// Failures are not remembered.
	d.err = errors.New("users service down")
	if _, err := c.get(ctx, "e"); err == nil {
		t.Fatal("a failed read was answered")
	}
	if got, err := c.usernames(ctx, []string{"a", "x"}); err == nil || got["a"] != "Annie" {
		t.Fatalf("names while the service is down: %v %v", got, err)
	}
	d.err = nil
	if _, err := c.get(ctx, "e"); err != nil {
		t.Fatal(err)
	}
}

// version is a users service's accounts version.
type version struct{ n int64 }

func (v *version) AccountsVersion(context.Context) (int64, error) { return v.n, nil }

// With the verifier's watch, an account and a name are believed while no
// account changes, past the few seconds, and read again once one has.
func TestAccountsWatched(t *testing.T) {
	ctx := t.Context()
	d := &directory{names: map[string]string{"a": "Ann"}}
	ver := &version{n: 1}
	w := authn.NewWatch(ver)
	now := time.Now()
	w.SetClock(func() time.Time { return now })
	c := newAccounts(d, w)
	tick := func() {
		t.Helper()
		now = now.Add(time.Second)
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	for range 10 {
		if _, err := c.get(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if got, _ := c.usernames(ctx, []string{"b"}); len(got) != 0 {
			t.Fatalf("names: %v", got)
		}
		tick()
	}
	// "b" is no account: asked each time. "a" was read once, its name with it.
	if len(d.gets) != 1 || len(d.asked) != 10 {
		t.Fatalf("gets %v, asked %v over 10 s with no change", d.gets, d.asked)
	}
	d.names["a"] = "Annie"
	ver.n = 2
	tick()
	if got, _ := c.usernames(ctx, []string{"a"}); got["a"] != "Annie" {
		t.Fatalf("an account changed elsewhere shows its old name: %v", got)
	}
	if u, _ := c.get(ctx, "a"); u.Username != "Annie" || len(d.gets) != 2 {
		t.Fatalf("an account changed elsewhere: %+v, gets %v", u, d.gets)
	}
}
