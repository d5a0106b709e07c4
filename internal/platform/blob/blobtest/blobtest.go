// Package blobtest is the contract test suite every blob.Store
// implementation must pass. Call Run from a store's tests:
//
//	func TestDisk(t *testing.T) {
//		s, _ := blob.NewDisk(t.TempDir())
//		blobtest.Run(t, s, blobtest.Options{})
//	}
//
// All keys Run uses live under "contract/<random>/", so runs against a
// shared store do not collide. Subtests run one after another (the memory
// check measures the whole process heap).
package blobtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"

	"github.com/reel-video/reel/internal/platform/blob"
)

// Options tune Run for a store.
type Options struct {
	// MaxHeapGrowth bounds how much the Go heap may grow while a large
	// object is put or read back. Default 8 MiB; a store that buffers a
	// multipart part needs a few parts' worth.
	MaxHeapGrowth int64
	// LargeSize is the size of the streamed round-trip object. Default
	// 40 MiB, or 8 MiB with -short.
	LargeSize int64
}

func (o *Options) defaults() {
	if o.MaxHeapGrowth <= 0 {
		o.MaxHeapGrowth = 8 << 20
	}
	if o.LargeSize <= 0 {
		o.LargeSize = 40 << 20
		if testing.Short() {
			o.LargeSize = 8 << 20
		}
	}
}

// Run runs the contract suite against s.
func Run(t *testing.T, s blob.Store, opts Options) {
	opts.defaults()
	var id [6]byte
	_, _ = rand.Read(id[:])
	c := &suite{s: s, opts: opts, prefix: "contract/" + hex.EncodeToString(id[:]) + "/"}
	t.Logf("contract keys under %s", c.prefix)

	t.Run("Ping", c.testPing)
	t.Run("PutStatOpen", c.testPutStatOpen)
	t.Run("UnknownSize", c.testUnknownSize)
	t.Run("Empty", c.testEmpty)
	t.Run("Ranges", c.testRanges)
	t.Run("ServeContent", c.testServeContent)
	t.Run("Overwrite", c.testOverwrite)
	t.Run("Delete", c.testDelete)
	t.Run("NotFound", c.testNotFound)
	t.Run("BadKeys", c.testBadKeys)
	t.Run("FailingReader", c.testFailingReader)
	t.Run("SizeMismatch", c.testSizeMismatch)
	t.Run("Canceled", c.testCanceled)
	t.Run("LargeStream", c.testLargeStream)
	t.Run("ConcurrentPuts", c.testConcurrentPuts)
	t.Run("PutFile", c.testPutFile)
	t.Run("List", c.testList)
}

type suite struct {
	s      blob.Store
	opts   Options
	prefix string
}

func (c *suite) key(name string) string { return c.prefix + name }

// data returns n deterministic pseudo-random bytes for seed.
func data(seed uint64, n int64) []byte {
	b := make([]byte, n)
	_, _ = stream(seed, n).Read(b) // ChaCha8 fills p completely
	return b
}

// stream returns a deterministic reader of n bytes without holding them.
func stream(seed uint64, n int64) io.Reader {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	return io.LimitReader(mrand.NewChaCha8(s), n)
}

// onlyReader hides every method but Read (bytes.Reader has ReadAt, Seek,
// WriteTo that a store must not depend on).
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func (c *suite) put(t *testing.T, key string, b []byte) blob.Info {
	t.Helper()
	info, err := c.s.Put(t.Context(), key, onlyReader{bytes.NewReader(b)}, int64(len(b)), "video/mp4")
	if err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(b), err)
	}
	return info
}

func (c *suite) readAll(t *testing.T, key string) []byte {
	t.Helper()
	o, err := c.s.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	return b
}

func (c *suite) wantContent(t *testing.T, key string, want []byte) {
	t.Helper()
	got := c.readAll(t, key)
	if !bytes.Equal(got, want) {
		t.Fatalf("content of %q: got %d bytes (sha %x), want %d bytes (sha %x)",
			key, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
	}
}

func (c *suite) wantNotFound(t *testing.T, key string) {
	t.Helper()
	if info, err := c.s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
	}
	o, err := c.s.Open(t.Context(), key)
	if !errors.Is(err, blob.ErrNotFound) {
		if err == nil {
			o.Close()
		}
		t.Fatalf("Open(%q) error = %v; want ErrNotFound", key, err)
	}
}
