package blob_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/blob/blobtest"
)

func TestDiskContract(t *testing.T) {
	s, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blobtest.Run(t, s, blobtest.Options{})
	assertNoTemps(t, s)
}

func assertNoTemps(t *testing.T, s *blob.Disk) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("leftover temp file %s", e.Name())
	}
}

func TestDiskLayoutAndCleanup(t *testing.T) {
	dir := t.TempDir()
	s, err := blob.NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	key := "videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4"
	if _, err := s.Put(ctx, key, strings.NewReader("hello"), 5, "video/mp4"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(key)))
	if err != nil || string(b) != "hello" {
		t.Fatalf("file on disk: %q, %v", b, err)
	}
	if _, err := s.Put(ctx, "videos/other", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	// The now-empty uuid directory is gone, "videos" (not empty) stays.
	if _, err := os.Stat(filepath.Join(dir, "videos", "0f8fad5b-d9cb-469f-a165-70867728950e")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty directory not removed: %v", err)
	}
	if err := s.Delete(ctx, "videos/other"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != ".tmp" {
		t.Fatalf("root should hold only .tmp, has %v", entries)
	}
	assertNoTemps(t, s)
}

func TestDiskFailedPutLeavesNoTemp(t *testing.T) {
	s, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("partial"), errReader{boom})
	if _, err := s.Put(t.Context(), "a/b", r, -1, ""); !errors.Is(err, boom) {
		t.Fatalf("Put = %v, want boom", err)
	}
	if _, err := s.Put(t.Context(), "a/c", strings.NewReader("short"), 10, ""); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("Put = %v, want ErrSizeMismatch", err)
	}
	assertNoTemps(t, s)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDiskPrefixConflict(t *testing.T) {
	s, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := s.Put(ctx, "a/b", strings.NewReader("x"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "a/b/c", strings.NewReader("y"), 1, ""); err == nil {
		t.Fatal("Put under an existing object's key succeeded on disk")
	}
	if _, err := s.Put(ctx, "x/y/z", strings.NewReader("y"), 1, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "x/y", strings.NewReader("y"), 1, ""); err == nil {
		t.Fatal("Put onto a directory succeeded")
	}
	assertNoTemps(t, s)
}

func TestDiskObjectSendsWithSendfile(t *testing.T) {
	s, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "f", strings.NewReader("0123456789"), 10, ""); err != nil {
		t.Fatal(err)
	}
	o, err := s.Open(t.Context(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, ok := o.(syscall.Conn); !ok {
		t.Fatalf("disk object %T gives no file descriptor (syscall.Conn) to sendfile", o)
	}
	if _, ok := o.(io.WriterTo); !ok {
		t.Fatalf("disk object %T is not an io.WriterTo", o)
	}
	var buf bytes.Buffer
	if _, err := o.Seek(3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&buf, o); err != nil || buf.String() != "3456789" {
		t.Fatalf("io.Copy after Seek: %q, %v", buf.String(), err)
	}
}

func TestDiskRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	if _, err := blob.NewDisk(dir); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".tmp", "put-123")
	fresh := filepath.Join(dir, ".tmp", "put-456")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := blob.NewDisk(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale temp file not removed: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh temp file removed: %v", err)
	}
}

// TestDiskConcurrentPutDelete puts and deletes keys sharing parent
// directories at the same time: Delete removes directories it empties, and
// no Put may fail because of that. (Not in the contract suite: the posix backend of versitygw,
// the server the S3 tests use, has exactly this race in v1.8.0.)
func TestDiskConcurrentPutDelete(t *testing.T) {
	s, err := blob.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 4, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				key := fmt.Sprintf("putdelete/shared/w%d/obj", w)
				b := fmt.Appendf(nil, "worker %d round %d", w, r)
				if _, err := s.Put(t.Context(), key, bytes.NewReader(b), int64(len(b)), ""); err != nil {
					errs <- fmt.Errorf("Put %s round %d: %w", key, r, err)
					return
				}
				if err := s.Delete(t.Context(), key); err != nil {
					errs <- fmt.Errorf("Delete %s round %d: %w", key, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertNoTemps(t, s)
}

// Import on the store's filesystem moves the file into place: no second
// copy (the object is the same inode), nothing left in the temp dir.
func TestDiskImportRenames(t *testing.T) {
	root := t.TempDir()
	s, err := blob.NewDisk(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(root, "spool")
	if err := os.WriteFile(spool, []byte("spooled bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(spool)
	if err != nil {
		t.Fatal(err)
	}
	key := "videos/0f8fad5b-d9cb-469f-a165-70867728950e/video.mp4"
	info, err := s.Import(t.Context(), key, spool, 13, "video/mp4")
	if err != nil || info.Size != 13 {
		t.Fatalf("Import = %+v, %v", info, err)
	}
	if _, err := os.Stat(spool); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the spooled file is still there: %v", err)
	}
	after, err := os.Stat(filepath.Join(s.Dir(), filepath.FromSlash(key)))
	if err != nil || !os.SameFile(before, after) {
		t.Fatalf("the object is not the imported file: %v", err)
	}
	assertNoTemps(t, s)
}

// Across filesystems (EXDEV from rename) Import copies the file like Put,
// leaves it where it was, and nothing in the temp dir.
func TestDiskImportAcrossFilesystems(t *testing.T) {
	restore := blob.SetRename(func(from, to string) error {
		if strings.Contains(from, ".tmp") {
			return os.Rename(from, to) // Put's own temp file
		}
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
	})
	defer restore()
	root := t.TempDir()
	s, err := blob.NewDisk(filepath.Join(root, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(root, "spool")
	if err := os.WriteFile(spool, []byte("spooled bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(t.Context(), "a/b", spool, 13, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spool); err != nil {
		t.Fatalf("a copied file stays: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(), "a", "b"))
	if err != nil || string(b) != "spooled bytes" {
		t.Fatalf("object %q, %v", b, err)
	}
	if _, err := s.Import(t.Context(), "a/c", spool, 12, ""); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("mismatched size across filesystems = %v", err)
	}
	if _, err := s.Stat(t.Context(), "a/c"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("a failed import left an object: %v", err)
	}
	assertNoTemps(t, s)
}
