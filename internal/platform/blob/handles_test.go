package blob_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func diskWithClock(t *testing.T) (*blob.Disk, *clock) {
	t.Helper()
	d, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now()}
	blob.SetClock(d, c.now)
	return d, c
}

func put(t *testing.T, d *blob.Disk, key, body string) {
	t.Helper()
	if _, err := d.Put(t.Context(), key, strings.NewReader(body), int64(len(body)), ""); err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, d *blob.Disk, key string) blob.Object {
	t.Helper()
	o, err := d.Open(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// readAll reads o from the start, however the last reader of its file
// left the file's offset.
func readAll(t *testing.T, o blob.Object) string {
	t.Helper()
	if _, err := o.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A closed object's file is lent to the next reader of the key, which
// reads from its own offset whatever the last reader left.
func TestDiskReusesOpenFiles(t *testing.T) {
	d, _ := diskWithClock(t)
	put(t, d, "v", "0123456789")
	o1 := open(t, d, "v")
	if _, err := o1.Seek(7, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(o1, make([]byte, 2)); err != nil {
		t.Fatal(err)
	}
	f1 := blob.OpenFile(o1)
	o1.Close()
	if n := blob.IdleFiles(d); n != 1 {
		t.Fatalf("%d idle files after one reader, want 1", n)
	}
	o2 := open(t, d, "v")
	defer o2.Close()
	if blob.OpenFile(o2) != f1 {
		t.Fatal("the second reader got a new file, not the idle one")
	}
	p := make([]byte, 3)
	if _, err := io.ReadFull(o2, p); err != nil || string(p) != "012" {
		t.Fatalf("a fresh reader on a reused file read %q, %v; want it from the start", p, err)
	}
	if got := o2.Info().Size; got != 10 {
		t.Fatalf("Info().Size = %d", got)
	}
	if err := o2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o2.Close(); err == nil {
		t.Fatal("a second Close succeeded")
	}
}

// Overwriting or deleting a key through the Disk retires its files: the
// idle ones at once, the lent ones when they come back. No reader gets
// the old object afterwards.
func TestDiskRetiresFilesOfChangedKeys(t *testing.T) {
	d, _ := diskWithClock(t)
	put(t, d, "v", "old")
	open(t, d, "v").Close() // idle
	lent := open(t, d, "v")
	put(t, d, "v", "new!")
	if n := blob.IdleFiles(d); n != 0 {
		t.Fatalf("%d idle files after an overwrite, want 0", n)
	}
	if got := readAll(t, lent); got != "old" {
		t.Fatalf("a reader from before the overwrite read %q, want what it opened", got)
	}
	lent.Close()
	if n := blob.IdleFiles(d); n != 0 {
		t.Fatalf("a file of the old object went back to the pool (%d idle)", n)
	}
	o := open(t, d, "v")
	if got := readAll(t, o); got != "new!" || o.Info().Size != 4 {
		t.Fatalf("after an overwrite: %q (%d bytes)", got, o.Info().Size)
	}
	o.Close()

	if err := d.Delete(t.Context(), "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(t.Context(), "v"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open after Delete: %v, want ErrNotFound (no idle file of the deleted object)", err)
	}
	if n := blob.IdleFiles(d); n != 0 {
		t.Fatalf("%d idle files after a failed open", n)
	}
	put(t, d, "v", "again")
	if got := readAll(t, open(t, d, "v")); got != "again" {
		t.Fatalf("after delete and put: %q", got)
	}
}

// A file is not lent once it is older than the pool's time to live, so
// what another process does to the directory shows within it; the sweep
// closes idle files past it.
func TestDiskFilesExpire(t *testing.T) {
	d, c := diskWithClock(t)
	put(t, d, "v", "x")
	o := open(t, d, "v")
	f := blob.OpenFile(o)
	o.Close()
	c.add(3 * time.Second)
	o = open(t, d, "v")
	if blob.OpenFile(o) == f {
		t.Fatal("a file older than the time to live was lent again")
	}
	o.Close()
	if n := blob.IdleFiles(d); n != 1 {
		t.Fatalf("%d idle, want 1", n)
	}
	blob.SweepFiles(d)
	if n := blob.IdleFiles(d); n != 1 {
		t.Fatalf("the sweep closed a fresh file (%d idle)", n)
	}
	c.add(3 * time.Second)
	blob.SweepFiles(d)
	if n := blob.IdleFiles(d); n != 0 {
		t.Fatalf("%d idle files after the sweep, want 0", n)
	}
	// A reader that kept its file past the time to live closes it.
	o = open(t, d, "v")
	c.add(3 * time.Second)
	o.Close()
	if n := blob.IdleFiles(d); n != 0 {
		t.Fatalf("an expired file went back to the pool (%d idle)", n)
	}
}

// However many readers there were at once, at most MaxIdleFiles files
// stay open after them; many goroutines opening and closing one key
// at once each read the right bytes.
func TestDiskIdleFilesBounded(t *testing.T) {
	d, _ := diskWithClock(t)
	body := bytes.Repeat([]byte("0123456789"), 1000)
	put(t, d, "v", string(body))
	var objs []blob.Object
	for range blob.MaxIdleFiles + 20 {
		objs = append(objs, open(t, d, "v"))
	}
	for _, o := range objs {
		o.Close()
	}
	if n := blob.IdleFiles(d); n != blob.MaxIdleFiles {
		t.Fatalf("%d idle files, want %d", n, blob.MaxIdleFiles)
	}

	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				o, err := d.Open(t.Context(), "v")
				if err != nil {
					errs <- err.Error()
					return
				}
				off := int64((g*50 + i) % 9000)
				p := make([]byte, 100)
				if _, err := o.Seek(off, io.SeekStart); err != nil {
					errs <- err.Error()
				} else if _, err := io.ReadFull(o, p); err != nil || !bytes.Equal(p, body[off:off+100]) {
					errs <- "wrong bytes"
				}
				o.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
