package blobtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
)

func (c *suite) testPing(t *testing.T) {
	if err := c.s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func (c *suite) testPutStatOpen(t *testing.T) {
	key := c.key("videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4")
	b := data(1, 100_003)
	before := time.Now()
	info := c.put(t, key, b)
	if info.Key != key || info.Size != int64(len(b)) || info.ETag == "" {
		t.Fatalf("Put info = %+v; want key %q, size %d, an ETag", info, key, len(b))
	}
	if d := info.ModTime.Sub(before); d < -time.Hour || d > time.Hour {
		t.Fatalf("Put ModTime %v is far from now %v", info.ModTime, before)
	}
	if strings.ContainsAny(info.ETag, "\"\r\n") {
		t.Fatalf("ETag %q must be usable inside quotes", info.ETag)
	}

	st, err := c.s.Stat(t.Context(), key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Key != key || st.Size != info.Size || st.ETag != info.ETag {
		t.Fatalf("Stat = %+v; Put returned %+v", st, info)
	}
	if d := st.ModTime.Sub(info.ModTime); d < -time.Second || d > time.Second {
		t.Fatalf("Stat ModTime %v, Put ModTime %v", st.ModTime, info.ModTime)
	}
	if st2, err := c.s.Stat(t.Context(), key); err != nil || st2.ETag != st.ETag {
		t.Fatalf("second Stat = %+v, %v; ETag must be stable (%q)", st2, err, st.ETag)
	}

	o, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if oi := o.Info(); oi.Key != key || oi.Size != info.Size || oi.ETag != info.ETag {
		t.Fatalf("Object.Info = %+v; want %+v", oi, info)
	}
	got, err := io.ReadAll(o)
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("ReadAll: %d bytes, %v; want the %d bytes put", len(got), err, len(b))
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n, err := o.Read(make([]byte, 10)); err == nil {
		t.Fatalf("Read after Close = %d, nil; want an error", n)
	}
}

func (c *suite) testUnknownSize(t *testing.T) {
	key := c.key("unknown/size.bin")
	b := data(2, 77_777)
	info, err := c.s.Put(t.Context(), key, onlyReader{bytes.NewReader(b)}, -1, "")
	if err != nil {
		t.Fatalf("Put size -1: %v", err)
	}
	if info.Size != int64(len(b)) {
		t.Fatalf("Put size -1: Info.Size = %d, want %d", info.Size, len(b))
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.Size != int64(len(b)) {
		t.Fatalf("Stat = %+v, %v", st, err)
	}
	c.wantContent(t, key, b)
}

func (c *suite) testEmpty(t *testing.T) {
	for _, size := range []int64{0, -1} {
		key := c.key(fmt.Sprintf("empty/size%d", size))
		info, err := c.s.Put(t.Context(), key, onlyReader{strings.NewReader("")}, size, "")
		if err != nil {
			t.Fatalf("Put empty (size %d): %v", size, err)
		}
		if info.Size != 0 {
			t.Fatalf("Put empty: Size %d", info.Size)
		}
		if st, err := c.s.Stat(t.Context(), key); err != nil || st.Size != 0 {
			t.Fatalf("Stat empty = %+v, %v", st, err)
		}
		o, err := c.s.Open(t.Context(), key)
		if err != nil {
			t.Fatalf("Open empty: %v", err)
		}
		if n, err := o.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
			t.Fatalf("ReadAt on empty = %d, %v; want 0, EOF", n, err)
		}
		if b, err := io.ReadAll(o); err != nil || len(b) != 0 {
			t.Fatalf("ReadAll on empty = %d bytes, %v", len(b), err)
		}
		o.Close()
	}
}
func (c *suite) testOverwrite(t *testing.T) {
	key := c.key("overwrite/obj")
	a, b := data(5, 10_000), data(6, 20_000)
	ia := c.put(t, key, a)

	old, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer old.Close()

	ib := c.put(t, key, b)
	if ib.Size != int64(len(b)) || ib.ETag == ia.ETag {
		t.Fatalf("after overwrite Info = %+v (first put %+v); want new size and ETag", ib, ia)
	}
	if st, err := c.s.Stat(t.Context(), key); err != nil || st.Size != int64(len(b)) || st.ETag != ib.ETag {
		t.Fatalf("Stat after overwrite = %+v, %v; want %+v", st, err, ib)
	}
	c.wantContent(t, key, b)

	// An object opened before the overwrite reads the old bytes or fails;
	// it never mixes versions.
	p := make([]byte, len(a))
	n, err := old.ReadAt(p, 0)
	if err == nil && (n != len(a) || !bytes.Equal(p, a)) {
		t.Fatalf("object opened before overwrite returned %d bytes that are not the old content", n)
	}
}

func (c *suite) testDelete(t *testing.T) {
	key := c.key("delete/a/b/obj")
	c.put(t, key, data(7, 1000))
	sibling := c.key("delete/a/other")
	c.put(t, sibling, data(8, 10))

	if err := c.s.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	c.wantNotFound(t, key)
	if err := c.s.Delete(t.Context(), key); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if err := c.s.Delete(t.Context(), c.key("delete/never/existed")); err != nil {
		t.Fatalf("Delete of a never-existing key: %v", err)
	}
	// Deleting a prefix of other keys deletes nothing.
	if err := c.s.Delete(t.Context(), c.key("delete/a")); err != nil {
		t.Fatalf("Delete of a prefix: %v", err)
	}
	c.wantContent(t, sibling, data(8, 10))
	// The key can be used again.
	c.put(t, key, data(9, 50))
	c.wantContent(t, key, data(9, 50))
}

func (c *suite) testNotFound(t *testing.T) {
	c.wantNotFound(t, c.key("nf/missing"))
	c.wantNotFound(t, c.key("nf/deep/er/missing.mp4"))
	parent := c.key("nf/file")
	c.put(t, parent, []byte("x"))
	c.wantNotFound(t, parent+"/child") // a "directory" that is an object
	c.wantNotFound(t, c.key("nf"))     // a prefix of a key
}

// BadKeys lists keys every store must reject.
var BadKeys = []string{
	"", "/", "/abs", "trailing/", "double//slash", "..", ".", "../up", "a/../b",
	"a/./b", "a/..", ".hidden", "dir/.tmp", "back\\slash", "sp ace", "nul\x00byte",
	"new\nline", "percent%2F", "colon:", "q?", "star*", "ünïcode", "tab\t",
	strings.Repeat("a", blob.MaxKeyLen+1), strings.Repeat("b", 256),
}

// GoodKeys lists keys every store must accept.
var GoodKeys = []string{
	"a", "videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4",
	"UPPER_lower-0.9", "thumbs/x/poster.v2.jpg", "a/b/c/d/e/f/g",
}

func (c *suite) testBadKeys(t *testing.T) {
	ctx := t.Context()
	for _, k := range BadKeys {
		if err := blob.ValidateKey(k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) = %v; want ErrInvalidKey", k, err)
		}
		if _, err := c.s.Put(ctx, k, strings.NewReader("x"), 1, ""); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Put(%q) = %v; want ErrInvalidKey", k, err)
		}
		if _, err := c.s.Stat(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v; want ErrInvalidKey", k, err)
		}
		if o, err := c.s.Open(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			if err == nil {
				o.Close()
			}
			t.Errorf("Open(%q) = %v; want ErrInvalidKey", k, err)
		}
		if err := c.s.Delete(ctx, k); !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidKey", k, err)
		}
	}
	for _, k := range GoodKeys {
		if err := blob.ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v", k, err)
		}
	}
	// Keys that are valid once prefixed work end to end.
	for i, k := range GoodKeys {
		key := c.key(fmt.Sprintf("good/%d/%s", i, k))
		c.put(t, key, []byte{byte(i)})
		c.wantContent(t, key, []byte{byte(i)})
	}
}
