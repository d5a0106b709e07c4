package blobtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/blob"
)

var errBoom = errors.New("blobtest: source failed")

// failingReader returns n bytes of data and then errBoom.
type failingReader struct {
	r io.Reader
	n int64
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBoom
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func (c *suite) testFailingReader(t *testing.T) {
	failAts := []int64{0, 100_000, 12 << 20}
	if c.opts.LargeSize < 12<<20 {
		failAts = failAts[:2]
	}
	for _, failAt := range failAts {
		for _, declared := range []int64{failAt + 1000, -1} {
			key := c.key(fmt.Sprintf("failing/at%d/declared%d", failAt, declared))
			r := &failingReader{r: stream(10, failAt+1000), n: failAt}
			_, err := c.s.Put(t.Context(), key, r, declared, "")
			if !errors.Is(err, errBoom) {
				t.Fatalf("Put with a reader failing after %d bytes (size %d) = %v; want the reader's error", failAt, declared, err)
			}
			c.wantNotFound(t, key)
		}
	}

	// A failed overwrite keeps the previous object.
	key := c.key("failing/existing")
	old := data(11, 5000)
	oi := c.put(t, key, old)
	if _, err := c.s.Put(t.Context(), key, &failingReader{r: stream(12, 1<<20), n: 70_000}, 1<<20, ""); !errors.Is(err, errBoom) {
		t.Fatalf("failing overwrite = %v; want the reader's error", err)
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.ETag != oi.ETag || st.Size != oi.Size {
		t.Fatalf("after a failed overwrite Stat = %+v, %v; want the old %+v", st, err, oi)
	}
	c.wantContent(t, key, old)
}

func (c *suite) testSizeMismatch(t *testing.T) {
	big := int64(6 << 20)
	for _, tc := range []struct{ declared, actual int64 }{
		{1000, 500}, {500, 1000}, {0, 1}, {1000, 0}, {1, 0}, {1000, 1001}, {1001, 1000},
		{big, big - 1}, {big, big + 1},
	} {
		key := c.key(fmt.Sprintf("mismatch/%d-%d", tc.declared, tc.actual))
		_, err := c.s.Put(t.Context(), key, stream(13, tc.actual), tc.declared, "")
		if !errors.Is(err, blob.ErrSizeMismatch) {
			t.Fatalf("Put declaring %d bytes, giving %d = %v; want ErrSizeMismatch", tc.declared, tc.actual, err)
		}
		c.wantNotFound(t, key)
	}

	key := c.key("mismatch/existing")
	old := data(14, 3000)
	oi := c.put(t, key, old)
	if _, err := c.s.Put(t.Context(), key, stream(15, 4000), 3999, ""); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("mismatched overwrite = %v; want ErrSizeMismatch", err)
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.ETag != oi.ETag {
		t.Fatalf("after a mismatched overwrite Stat = %+v, %v; want the old %+v", st, err, oi)
	}
	c.wantContent(t, key, old)
}

// cancelingReader cancels its context after n bytes.
type cancelingReader struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func (c *suite) testCanceled(t *testing.T) {
	for _, declared := range []int64{1 << 20, -1} {
		key := c.key(fmt.Sprintf("canceled/%d", declared))
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelingReader{r: stream(16, 1<<20), n: 200_000, cancel: cancel}
		_, err := c.s.Put(ctx, key, r, declared, "")
		cancel()
		if err == nil {
			t.Fatalf("Put whose context was canceled midway succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Logf("Put canceled midway: %v (not wrapping context.Canceled)", err)
		}
		c.wantNotFound(t, key)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.s.Put(ctx, c.key("canceled/before"), strings.NewReader("x"), 1, ""); err == nil {
		t.Fatalf("Put with a canceled context succeeded")
	}
	c.wantNotFound(t, c.key("canceled/before"))
}
