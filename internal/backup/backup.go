// Package backup makes and restores backups of the embedded setup: the
// SQLite databases and the disk blob store. A backup is a directory:
//
//	manifest.json          what is in it, with sizes and SHA-256 hashes
//	databases/<svc>.db     one consistent snapshot per database file
//	blobs/<key>            the blob store's objects, hard-linked or copied
//
// The databases are snapshotted first, then the blobs are taken: a blob is
// stored before any row names it and deleted only after its video was
// purged from the trash (internal/videos), so every blob a snapshot's live
// or restorable rows name is still there when the blobs are walked. Blobs
// stored after the snapshot are extras that no row names (reel check
// reports them as orphans). The manifest is written last: a directory
// without one is not a backup.
//
// PostgreSQL and S3 have tools of their own (docs/operations.md); Backup
// and Restore refuse them.
package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

// Format is the version of the backup layout and manifest.
const Format = 1

// ManifestName is the manifest's file name in a backup directory.
const ManifestName = "manifest.json"

const (
	dbDir   = "databases"
	blobDir = "blobs"
	// blobTmp is the disk store's directory of writes in progress
	// (blob.Disk), never part of a backup.
	blobTmp = ".tmp"
)

// ErrNotEmbedded is returned for a configuration with a PostgreSQL
// database or an S3 blob store.
var ErrNotEmbedded = errors.New("reel backup and restore cover the embedded setup (SQLite and a blob directory) only; for PostgreSQL and S3 follow the recipe in docs/operations.md (Backups)")

// Manifest describes a backup.
type Manifest struct {
	Format    int       `json:"format"`
	Version   string    `json:"reel_version"`
	CreatedAt time.Time `json:"created_at"`
	// Databases says which services' tables each database file holds.
	Databases []Database `json:"databases"`
	// Files are every file of the backup but the manifest.
	Files []File `json:"files"`
}

// Database is one database file of a backup.
type Database struct {
	Path     string   `json:"path"`
	Services []string `json:"services"`
}

// File is one file of a backup: its slash-separated path under the
// backup's directory, size and SHA-256.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Summary tells what a backup or restore did.
type Summary struct {
	Databases int
	Blobs     int
	Bytes     int64
	// Linked counts the blobs hard-linked rather than copied.
	Linked int
}

// group is one database URL and the services whose tables it holds.
type group struct {
	url, file string
	services  []string
}

// layout reads the embedded setup from cfg: its database files (one per
// distinct URL, services in start order) and its blob directory.
func layout(cfg *config.Config) ([]group, string, error) {
	var gs []group
	for _, svc := range config.Services {
		url := cfg.Databases[svc]
		file, err := sqldb.SQLiteFile(url)
		if errors.Is(err, sqldb.ErrNotSQLite) {
			return nil, "", fmt.Errorf("the %s database is PostgreSQL: %w", svc, ErrNotEmbedded)
		}
		if err != nil {
			return nil, "", err
		}
		i := slices.IndexFunc(gs, func(g group) bool { return g.url == url })
		if i < 0 {
			gs = append(gs, group{url: url, file: file})
			i = len(gs) - 1
		}
		gs[i].services = append(gs[i].services, svc)
	}
	dir, err := blob.LocalDir(cfg.Videos.BlobURL, filepath.Join(cfg.DataDir, "blobs"))
	if errors.Is(err, blob.ErrNotLocal) {
		return nil, "", fmt.Errorf("the blob store is S3: %w", ErrNotEmbedded)
	}
	return gs, dir, err
}

// Backup writes a backup of the embedded setup cfg describes into dest, a
// new or empty directory, while reel may be serving. version goes into the
// manifest. On failure dest is emptied again.
func Backup(ctx context.Context, cfg *config.Config, dest, version string) (_ Summary, err error) {
	gs, blobRoot, err := layout(cfg)
	if err != nil {
		return Summary{}, err
	}
	for _, g := range gs {
		if _, err := os.Stat(g.file); err != nil {
			return Summary{}, fmt.Errorf("no database at %s (is REEL_DATA_DIR right?): %w", g.file, err)
		}
	}
	if inside(dest, blobRoot) {
		return Summary{}, fmt.Errorf("the backup's directory %s is inside the blob directory %s: back up elsewhere", dest, blobRoot)
	}
	if err := emptyDir(dest, "the backup's directory"); err != nil {
		return Summary{}, fmt.Errorf("%w: back up into a new or empty directory", err)
	}
	if err := os.MkdirAll(filepath.Join(dest, dbDir), 0o750); err != nil {
		return Summary{}, err
	}
	defer func() {
		if err != nil {
			emptyOut(dest)
		}
	}()
	m := Manifest{Format: Format, Version: version, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	var sum Summary

	// Databases first: see the package comment.
	for _, g := range gs {
		// reel.db as in a data directory; per service when split.
		name := "reel"
		if len(gs) > 1 {
			name = g.services[0]
		}
		rel := path.Join(dbDir, name+".db")
		if err := snapshot(ctx, g.url, filepath.Join(dest, filepath.FromSlash(rel))); err != nil {
			return Summary{}, err
		}
		f, err := describe(dest, rel)
		if err != nil {
			return Summary{}, err
		}
		m.Databases = append(m.Databases, Database{Path: rel, Services: g.services})
		m.Files = append(m.Files, f)
		sum.Databases++
		sum.Bytes += f.Size
	}

	files, linked, err := takeBlobs(ctx, blobRoot, filepath.Join(dest, blobDir))
	if err != nil {
		return Summary{}, err
	}
	for _, f := range files {
		sum.Blobs++
		sum.Bytes += f.Size
	}
	sum.Linked = linked
	m.Files = append(m.Files, files...)
	if err := writeManifest(dest, m); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// snapshot writes a consistent copy of the database at url to file.
func snapshot(ctx context.Context, url, file string) error {
	db, err := sqldb.Open(ctx, url, sqldb.Options{MaxOpenConns: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.SnapshotTo(ctx, file)
}

// takeBlobs puts every object of the disk store at root into dir,
// hard-linked where the file system allows, else copied, and describes
// each. An object deleted meanwhile is left out (see the package
// comment).
func takeBlobs(ctx context.Context, root, dir string) (files []File, linked int, err error) {
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil // nothing stored yet
	}
	canLink := true
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != root {
				return nil // emptied and removed by a delete meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == blobTmp {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || blob.ValidateKey(key) != nil {
			return nil // not an object of the store
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return err
		}
		var f File
		if canLink {
			err = os.Link(p, dst)
			switch {
			case err == nil:
				linked++
				// The object is never written in place (blob.Disk
				// renames a new version over it), so the link keeps
				// the bytes as they are now.
				f, err = describe(dir, key)
			case errors.Is(err, fs.ErrNotExist):
				return nil
			default:
				canLink = false // another file system, or no links here
			}
		}
		if !canLink {
			f, err = copyFile(p, dst, nil)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
		}
		if err != nil {
			return err
		}
		f.Path = path.Join(blobDir, key)
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("back up blobs: %w", err)
	}
	return files, linked, nil
}

// describe hashes the file rel (slash-separated) under dir.
func describe(dir, rel string) (File, error) {
	fh, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
	if err != nil {
		return File{}, err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return File{}, err
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// copyFile copies src to the new file dst, fsynced, and describes what it
// copied. With want, the copy must match it, or it fails.
func copyFile(src, dst string, want *File) (File, error) {
	in, err := os.Open(src)
	if err != nil {
		return File{}, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("copy %s: %w", src, err)
	}
	got := File{Size: n, SHA256: hexSum(h)}
	if want != nil && (got.Size != want.Size || got.SHA256 != want.SHA256) {
		return File{}, fmt.Errorf("%w: %s has %d bytes with SHA-256 %s, the manifest says %d bytes with %s",
			ErrCorrupt, want.Path, got.Size, got.SHA256, want.Size, want.SHA256)
	}
	return got, nil
}

func hexSum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

func writeManifest(dest string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dest, ManifestName+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	if err := syncFile(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dest, ManifestName)); err != nil {
		return err
	}
	return syncFile(dest)
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// emptyDir makes sure dir is an empty directory, creating it if needed.
func emptyDir(dir, what string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o750)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s %s is a file, not a directory", what, dir)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("%s %s is not empty (it has %s)", what, dir, strings.Join(names(entries, 3), ", "))
	}
	return nil
}

func names(entries []os.DirEntry, n int) []string {
	var out []string
	for i, e := range entries {
		if i == n {
			out = append(out, "…")
			break
		}
		out = append(out, e.Name())
	}
	return out
}

// inside reports whether path is dir or below it.
func inside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// emptyOut removes what dir holds, leaving it empty.
func emptyOut(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		_ = os.RemoveAll(filepath.Join(dir, e.Name()))
	}
}
