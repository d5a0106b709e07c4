package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tmpDirName is the directory under the root that holds uploads in
// progress. Keys cannot name it because segments may not start with '.'.
const tmpDirName = ".tmp"

// staleTempAge is how old a leftover temp file (from a crash) must be
// before NewDisk removes it.
const staleTempAge = 24 * time.Hour

// copyBufSize is the buffer used to copy a Put's source into its file.
const copyBufSize = 256 << 10

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Disk stores objects as files under a root directory: the object "a/b/c"
// is the file <root>/a/b/c. Uploads are written to <root>/.tmp, fsynced,
// renamed into place, and the directory is fsynced, so an object is either
// absent or complete, also across crashes.
//
// A key that is a path prefix of another ("a/b" and "a/b/c") cannot exist
// at the same time on Disk; the second Put fails.
type Disk struct {
	root    string
	tmp     string
	handles *handles // open files lent to readers (handles.go)
}

var _ Store = (*Disk)(nil)

// NewDisk opens (creating if needed) a disk store rooted at dir. Leftover
// temp files older than a day are removed.
func NewDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("blob: disk store needs a directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: disk store: %w", err)
	}
	d := &Disk{root: root, tmp: filepath.Join(root, tmpDirName), handles: newHandles()}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("blob: disk store: %w", err)
	}
	if err := os.MkdirAll(d.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("blob: disk store: %w", err)
	}
	d.removeStaleTemps(time.Now().Add(-staleTempAge))
	return d, nil
}

// Dir returns the absolute root directory.
func (d *Disk) Dir() string { return d.root }

func (d *Disk) String() string { return "file://" + filepath.ToSlash(d.root) }

func (d *Disk) removeStaleTemps(before time.Time) {
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "put-") && !strings.HasPrefix(e.Name(), "ping-") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(before) {
			_ = os.Remove(filepath.Join(d.tmp, e.Name()))
		}
	}
}

func (d *Disk) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64, contentType string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	f, err := os.CreateTemp(d.tmp, "put-*")
	if errors.Is(err, fs.ErrNotExist) {
		// Someone removed the temp dir; recreate it once.
		if err = os.MkdirAll(d.tmp, 0o700); err == nil {
			f, err = os.CreateTemp(d.tmp, "put-*")
		}
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
	}
	tmpName := f.Name()
	committed := false
	defer func() {
		if !committed {
			_ = f.Close() // may already be closed
			_ = os.Remove(tmpName)
		}
	}()

	src := newSourceReader(ctx, r, size)
	bp := copyBufPool.Get().(*[]byte)
	n, err := io.CopyBuffer(writerOnly{f}, src, *bp)
	copyBufPool.Put(bp)
	if err == nil {
		err = src.finish()
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		return Info{}, fmt.Errorf("blob: put %q: sync: %w", key, err)
	}
	if err := f.Close(); err != nil {
		return Info{}, fmt.Errorf("blob: put %q: close: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
	}

	info, err := d.place(tmpName, key, n)
	if err == nil || errors.Is(err, errPlacedUnsynced) {
		committed = true
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: put %q: %w", key, err)
	}
	return info, nil
}

// errPlacedUnsynced means the file was renamed into place but its
// directory could not be synced: the object exists, the call failed.
var errPlacedUnsynced = errors.New("sync dir")

// renameFile is os.Rename; tests replace it to exercise the cross-device
// fallback of Import.
var renameFile = os.Rename

// place renames the complete, synced file src to the object key (making
// its directories) and syncs the directory. n is the size written.
func (d *Disk) place(src, key string, n int64) (Info, error) {
	dst := d.path(key)
	// Readers of the old object keep their files; no one gets them again.
	defer d.handles.invalidate(key)
	parent := filepath.Dir(dst)
	var err error
	for attempt := 0; ; attempt++ {
		// A concurrent Delete may remove a freshly made (still empty)
		// directory while we create its child or rename into it; that
		// shows up as ENOENT, and making the directories again fixes it.
		if err = d.mkdirs(parent); err == nil {
			err = renameFile(src, dst)
		}
		if err == nil || !errors.Is(err, fs.ErrNotExist) || attempt == 20 {
			break
		}
	}
	if err != nil {
		if fi, serr := os.Lstat(dst); serr == nil && fi.IsDir() {
			err = fmt.Errorf("key is a prefix of other keys: %w", err)
		}
		return Info{}, err
	}
	if err := syncDir(parent); err != nil {
		return Info{}, fmt.Errorf("%w: %w", errPlacedUnsynced, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return Info{}, err
	}
	info := fileInfo(key, fi)
	if info.Size != n {
		// Someone replaced the file in between; report what we wrote.
		info.Size = n
	}
	return info, nil
}

var _ Importer = (*Disk)(nil)

// Import implements Importer. When the file at path is on the store's
// filesystem it becomes the object by a rename, after an fsync: the bytes
// are written once, where Put would write them a second time. The file
// must not be written to meanwhile. Across filesystems Import copies it
// as Put does and leaves it at path.
func (d *Disk) Import(ctx context.Context, key, path string, size int64, contentType string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	f, err := os.Open(path) // fsync needs no write access
	if err != nil {
		return Info{}, fmt.Errorf("blob: import %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil && size >= 0 && fi.Size() != size {
		err = fmt.Errorf("%w: the file has %d bytes, expected %d", ErrSizeMismatch, fi.Size(), size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: import %q: %w", key, err)
	}
	info, err := d.place(path, key, fi.Size())
	if errors.Is(err, syscall.EXDEV) {
		// Another filesystem: copy, as a Put would.
		return putFromFile(ctx, d, key, path, size, contentType)
	}
	if err != nil {
		return Info{}, fmt.Errorf("blob: import %q: %w", key, err)
	}
	return info, nil
}

// mkdirs makes dir and any missing parents below the root, fsyncing the
// parent of each directory it creates so the new entries are durable.
func (d *Disk) mkdirs(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (a key is a prefix of this key)", dir)
		}
		return nil
	}
	rel, err := filepath.Rel(d.root, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("directory %s outside the root", dir)
	}
	cur := d.root
	for part := range strings.SplitSeq(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		err := os.Mkdir(next, 0o750)
		switch {
		case err == nil:
			if err := syncDir(cur); err != nil {
				return err
			}
		case errors.Is(err, fs.ErrExist):
			fi, serr := os.Stat(next)
			if serr != nil {
				return serr
			}
			if !fi.IsDir() {
				return fmt.Errorf("%s is not a directory (a key is a prefix of this key)", next)
			}
		default:
			return err
		}
		cur = next
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isNotFound reports whether a filesystem error means there is no file at
// the path (including a path component that is a regular file).
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Open implements Store. The returned Object is a *DiskObject, often on a
// file that an earlier reader of the key opened (see handles.go).
func (d *Disk) Open(ctx context.Context, key string) (Object, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	hd, gen, ok := d.handles.take(key)
	if ok {
		return &DiskObject{h: hd, key: key, gen: gen, pool: d.handles, at: -1}, nil
	}
	hd, err := d.open(key)
	if err != nil {
		d.handles.cancel(key)
		return nil, err
	}
	return &DiskObject{h: hd, key: key, gen: gen, pool: d.handles}, nil
}

func (d *Disk) open(key string) (handle, error) {
	opened := d.handles.now()
	f, err := openRead(d.path(key))
	if err != nil {
		if isNotFound(err) {
			return handle{}, fmt.Errorf("blob: open %q: %w", key, ErrNotFound)
		}
		return handle{}, fmt.Errorf("blob: open %q: %w", key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return handle{}, fmt.Errorf("blob: open %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return handle{}, fmt.Errorf("blob: open %q: %w", key, ErrNotFound)
	}
	return handle{f: f, info: fileInfo(key, fi), opened: opened}, nil
}

// Stat implements Store.
func (d *Disk) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(d.path(key))
	if err != nil {
		if isNotFound(err) {
			return Info{}, fmt.Errorf("blob: stat %q: %w", key, ErrNotFound)
		}
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("blob: stat %q: %w", key, ErrNotFound)
	}
	return fileInfo(key, fi), nil
}

// Delete implements Store. Directories left empty are removed.
func (d *Disk) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer d.handles.invalidate(key)
	p := d.path(key)
	fi, err := os.Lstat(p)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	if fi.IsDir() {
		return nil // a prefix of other keys, not an object
	}
	if err := os.Remove(p); err != nil && !isNotFound(err) {
		return fmt.Errorf("blob: delete %q: %w", key, err)
	}
	// Remove now-empty parents. os.Remove refuses non-empty directories,
	// and Put retries if it loses a race with this.
	for dir := filepath.Dir(p); dir != d.root && strings.HasPrefix(dir, d.root+string(filepath.Separator)); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return nil
}

// Ping implements Store: it checks that a file can be created in the
// store's directory.
func (d *Disk) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.tmp, "ping-*")
	if err != nil {
		return fmt.Errorf("blob: ping %s: %w", d.root, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("blob: ping %s: %w", d.root, err)
	}
	return nil
}

func fileInfo(key string, fi fs.FileInfo) Info {
	mt := fi.ModTime()
	return Info{
		Key:     key,
		Size:    fi.Size(),
		ModTime: mt,
		ETag:    fmt.Sprintf("%x-%x-%x", fi.Size(), mt.UnixNano(), inode(fi)),
	}
}

// writerOnly hides *os.File's ReadFrom so io.CopyBuffer uses our buffer.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }

// DiskObject is the Object returned by Disk.Open. It is backed by an open
// *os.File: reads see the object as it was when that file was opened, even
// if it is overwritten or deleted meanwhile. Close gives the file back to
// the Disk for the next reader.
//
// Seeking is done lazily: http.ServeContent seeks to the end for the size,
// back to the start, and then to the range, and only the last one needs
// the file's offset; it is set once, when bytes are read. The file
// descriptor reaches sendfile through SyscallConn (net/http's
// io.LimitedReader over the object is unwrapped to it by package net).
type DiskObject struct {
	h    handle
	key  string
	gen  uint64
	pool *handles
	// pos is the offset the reader is at, unless lost: after sendfile the
	// file's own offset is the reader's, and only the file knows it.
	pos  int64
	lost bool
	at   int64 // the file's offset when known, else -1
}

var (
	_ Object       = (*DiskObject)(nil)
	_ io.WriterTo  = (*DiskObject)(nil)
	_ syscall.Conn = (*DiskObject)(nil)
)

// Info implements Object.
func (o *DiskObject) Info() Info { return o.h.info }

// settle moves the file's offset to where the reader is.
func (o *DiskObject) settle() error {
	if o.lost || o.at == o.pos {
		return nil
	}
	if _, err := o.h.f.Seek(o.pos, io.SeekStart); err != nil {
		o.at = -1
		return err
	}
	o.at = o.pos
	return nil
}

// moved records that the file's offset advanced by n from where it was
// settled.
func (o *DiskObject) moved(n int64) {
	if !o.lost {
		o.pos += n
		o.at = o.pos
	}
}

// Read implements io.Reader.
func (o *DiskObject) Read(p []byte) (int, error) {
	if err := o.settle(); err != nil {
		return 0, err
	}
	n, err := o.h.f.Read(p)
	o.moved(int64(n))
	return n, err
}

// ReadAt implements io.ReaderAt; it does not move the offset.
func (o *DiskObject) ReadAt(p []byte, off int64) (int, error) { return o.h.f.ReadAt(p, off) }

// Seek implements io.Seeker. The size is the object's as opened.
func (o *DiskObject) Seek(offset int64, whence int) (int64, error) {
	var pos int64
	switch whence {
	case io.SeekStart:
		pos = offset
	case io.SeekCurrent:
		if o.lost {
			// Only the file knows where sendfile left it.
			p, err := o.h.f.Seek(offset, io.SeekCurrent)
			if err != nil {
				return 0, err
			}
			o.pos, o.at, o.lost = p, p, false
			return p, nil
		}
		pos = o.pos + offset
	case io.SeekEnd:
		pos = o.h.info.Size + offset
	default:
		return 0, fmt.Errorf("blob: seek: invalid whence %d", whence)
	}
	if pos < 0 {
		return 0, errors.New("blob: seek to a negative offset")
	}
	o.pos, o.lost = pos, false
	return pos, nil
}

// SyscallConn gives the file descriptor, at the reader's offset, to
// sendfile. What sendfile sends moves the file's offset without this
// object seeing how far.
func (o *DiskObject) SyscallConn() (syscall.RawConn, error) {
	if err := o.settle(); err != nil {
		return nil, err
	}
	o.lost, o.at = true, -1
	return o.h.f.SyscallConn()
}

// WriteTo implements io.WriterTo so io.Copy to a socket can use sendfile.
func (o *DiskObject) WriteTo(w io.Writer) (int64, error) {
	if err := o.settle(); err != nil {
		return 0, err
	}
	n, err := o.h.f.WriteTo(w)
	o.moved(n)
	return n, err
}

// Close implements io.Closer: the file goes back to the Disk, which keeps
// it for the next reader or closes it. The object is unusable afterwards.
func (o *DiskObject) Close() error {
	if o.pool == nil {
		return os.ErrClosed
	}
	o.pool.give(o.key, o.h, o.gen)
	o.pool, o.h = nil, handle{}
	return nil
}

// List implements Store: it walks the directories under the root that can
// hold keys with prefix, skipping the temp directory of uploads in
// progress.
func (d *Disk) List(ctx context.Context, prefix string, fn func(Info) error) error {
	// Start at the deepest directory the prefix names in full.
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i > 0 {
		if err := ValidateKey(prefix[:i]); err != nil {
			return err
		}
		start = d.path(prefix[:i])
	}
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if isNotFound(err) {
				return nil // gone meanwhile (a Delete removed an empty directory)
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() {
			if p == d.tmp {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || ValidateKey(key) != nil {
			return nil
		}
		fi, err := e.Info()
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(fileInfo(key, fi))
	})
	if err != nil {
		return fmt.Errorf("blob: list %q: %w", prefix, err)
	}
	return nil
}
