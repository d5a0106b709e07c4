package blobtest

import (
	"errors"
	"slices"
	"testing"

	"github.com/reel-video/reel/internal/platform/blob"
)

func (c *suite) list(t *testing.T, prefix string) map[string]blob.Info {
	t.Helper()
	got := map[string]blob.Info{}
	err := c.s.List(t.Context(), prefix, func(i blob.Info) error {
		if _, dup := got[i.Key]; dup {
			t.Errorf("List(%q) gave %s twice", prefix, i.Key)
		}
		got[i.Key] = i
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func (c *suite) testList(t *testing.T) {
	want := map[string]int64{
		c.key("list/a.mp4"):       10,
		c.key("list/d/b.jpg"):     0,
		c.key("list/d/e/f.m3u8"):  300,
		c.key("list2/not-listed"): 1,
	}
	for k, n := range want {
		c.put(t, k, data(uint64(n), n))
	}
	got := c.list(t, c.key("list/"))
	if len(got) != 3 {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		t.Fatalf("List(list/) = %v, want the 3 objects under it", keys)
	}
	for k, i := range got {
		st, err := c.s.Stat(t.Context(), k)
		if err != nil {
			t.Fatalf("Stat(%s) of a listed key: %v", k, err)
		}
		if i.Size != want[k] || i.Size != st.Size || i.ETag != st.ETag || !i.ModTime.Equal(st.ModTime) {
			t.Errorf("List gave %+v for %s, Stat %+v (size %d put)", i, k, st, want[k])
		}
	}
	// A prefix that ends inside a segment matches keys, not directories.
	if got := c.list(t, c.key("list")); len(got) != 4 {
		t.Errorf("List(list) gave %d objects, want 4 (list/... and list2/...)", len(got))
	}
	if got := c.list(t, c.key("list/d/e/")); len(got) != 1 {
		t.Errorf("List(list/d/e/) gave %d objects, want 1", len(got))
	}
	if got := c.list(t, c.key("nothing-here/")); len(got) != 0 {
		t.Errorf("List of an empty prefix gave %v", got)
	}
	// The whole store includes them (and whatever else is there).
	all := c.list(t, "")
	for k := range want {
		if _, ok := all[k]; !ok {
			t.Errorf("List(\"\") misses %s", k)
		}
	}
	// A deleted object is no longer listed.
	if err := c.s.Delete(t.Context(), c.key("list/d/e/f.m3u8")); err != nil {
		t.Fatal(err)
	}
	if got := c.list(t, c.key("list/")); len(got) != 2 {
		t.Errorf("after a Delete, List gave %d objects, want 2", len(got))
	}
	// fn's error stops the listing and comes back.
	stop := errors.New("stop")
	calls := 0
	err := c.s.List(t.Context(), c.key("list"), func(blob.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with a failing fn: err %v after %d calls, want stop after 1", err, calls)
	}
}
