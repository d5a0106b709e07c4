package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/backup"
	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/platform/sqldb"
)

func load(t *testing.T, vars map[string]string) *config.Config {
	t.Helper()
	cfg, _, err := config.Load("backup", nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// setup makes a data directory with a database per distinct URL of cfg
// (a table named after its first service) and a few blobs.
func setup(t *testing.T, cfg *config.Config) {
	t.Helper()
	ctx := context.Background()
	done := map[string]bool{}
	for _, svc := range config.Services {
		url := cfg.Databases[svc]
		if done[url] {
			continue
		}
		done[url] = true
		db, err := sqldb.Open(ctx, url, sqldb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, "CREATE TABLE "+svc+"_things (v TEXT)"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, "INSERT INTO "+svc+"_things (v) VALUES ($1)", "kept"); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	for key, body := range map[string]string{
		"videos/a/video.mp4": "the bytes of a", "videos/a/poster.jpg": "a poster",
		"videos/b/video.mp4": "the bytes of b",
		".tmp/put-123":       "a write in progress", ".DS_Store": "not an object",
	} {
		p := filepath.Join(cfg.Videos.BlobURL, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func value(t *testing.T, url, table string) string {
	t.Helper()
	db, err := sqldb.Open(context.Background(), url, sqldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.R.QueryRow("SELECT v FROM " + table).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, split := range map[string]bool{"one database": false, "users apart": true} {
		t.Run(name, func(t *testing.T) {
			vars := func(dir string) map[string]string {
				v := map[string]string{"REEL_DATA_DIR": dir}
				if split {
					v["REEL_USERS_DATABASE_URL"] = filepath.Join(dir, "users.db")
				}
				return v
			}
			src := load(t, vars(t.TempDir()))
			setup(t, src)
			dest := filepath.Join(t.TempDir(), "b")
			s, err := backup.Backup(ctx, src, dest, "test")
			if err != nil {
				t.Fatal(err)
			}
			wantDBs := 1
			if split {
				wantDBs = 2
			}
			if s.Databases != wantDBs || s.Blobs != 3 || s.Linked != 3 {
				t.Fatalf("summary %+v", s)
			}
			if _, err := os.Stat(filepath.Join(dest, "blobs", ".tmp")); err == nil {
				t.Fatal("a write in progress was backed up")
			}
			if _, err := backup.Backup(ctx, src, dest, "test"); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Fatalf("backup into a used directory: %v", err)
			}
			if _, err := backup.Backup(ctx, src, filepath.Join(src.Videos.BlobURL, "b"), "test"); err == nil || !strings.Contains(err.Error(), "inside the blob directory") {
				t.Fatalf("backup into the blob directory: %v", err)
			}

			dst := load(t, vars(filepath.Join(t.TempDir(), "new")))
			if s, err := backup.Restore(ctx, dst, dest); err != nil || s.Databases != wantDBs || s.Blobs != 3 {
				t.Fatalf("restore: %+v %v", s, err)
			}
			for _, svc := range config.Services {
				if !split && svc != "users" || split && svc != "users" && svc != "logs" {
					continue
				}
				if got := value(t, dst.Databases[svc], svc+"_things"); got != "kept" {
					t.Fatalf("%s after the restore: %q", svc, got)
				}
			}
			for key, want := range map[string]string{"videos/a/video.mp4": "the bytes of a", "videos/a/poster.jpg": "a poster", "videos/b/video.mp4": "the bytes of b"} {
				if b, err := os.ReadFile(filepath.Join(dst.Videos.BlobURL, filepath.FromSlash(key))); err != nil || string(b) != want {
					t.Fatalf("blob %s after the restore: %q %v", key, b, err)
				}
			}
			if _, err := backup.Restore(ctx, dst, dest); err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Fatalf("restore into a used data directory: %v", err)
			}
			// Another layout of the databases cannot take this backup.
			other := load(t, vars(filepath.Join(t.TempDir(), "other")))
			other.Databases["logs"] = "sqlite://" + filepath.Join(other.DataDir, "logs.db")
			if _, err := backup.Restore(ctx, other, dest); err == nil || !strings.Contains(err.Error(), "REEL_DATABASE_URL") {
				t.Fatalf("restore into another layout: %v", err)
			}
		})
	}
}

// A backup whose files no longer match the manifest is refused, and the
// refused restore leaves no file behind.
func TestRestoreRefusesChangedBackup(t *testing.T) {
	ctx := context.Background()
	src := load(t, map[string]string{"REEL_DATA_DIR": t.TempDir()})
	setup(t, src)
	good := filepath.Join(t.TempDir(), "b")
	if _, err := backup.Backup(ctx, src, good, "test"); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(dir string) error{
		"a byte changed": func(dir string) error {
			return rewrite(filepath.Join(dir, "blobs/videos/b/video.mp4"), "the bytes of B")
		},
		"a blob cut short": func(dir string) error {
			return rewrite(filepath.Join(dir, "blobs/videos/a/video.mp4"), "the bytes")
		},
		"a blob missing": func(dir string) error { return os.Remove(filepath.Join(dir, "blobs/videos/a/poster.jpg")) },
		"the database changed": func(dir string) error {
			b, err := os.ReadFile(filepath.Join(dir, "databases/reel.db"))
			if err != nil {
				return err
			}
			b[len(b)-1] ^= 0xff
			return rewrite(filepath.Join(dir, "databases/reel.db"), string(b))
		},
		"a path out of the backup": func(dir string) error {
			return editManifest(dir, func(m *backup.Manifest) { m.Files[1].Path = "blobs/../../escape" })
		},
		"no manifest": func(dir string) error { return os.Remove(filepath.Join(dir, backup.ManifestName)) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "b")
			if err := copyTree(good, dir); err != nil {
				t.Fatal(err)
			}
			if err := change(dir); err != nil {
				t.Fatal(err)
			}
			dst := load(t, map[string]string{"REEL_DATA_DIR": filepath.Join(t.TempDir(), "new")})
			_, err := backup.Restore(ctx, dst, dir)
			if err == nil {
				t.Fatal("restored")
			}
			if name == "no manifest" {
				if !strings.Contains(err.Error(), "not a reel backup") {
					t.Fatalf("error: %v", err)
				}
			} else if !errors.Is(err, backup.ErrCorrupt) {
				t.Fatalf("error: %v", err)
			}
			var left []string
			_ = filepath.Walk(dst.DataDir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Fatalf("the refused restore left %v", left)
			}
		})
	}
}

func TestRefusesPostgresAndS3(t *testing.T) {
	ctx := context.Background()
	for name, vars := range map[string]map[string]string{
		"postgres": {"REEL_DATA_DIR": t.TempDir(), "REEL_VIDEOS_DATABASE_URL": "postgres://reel:secret@db/videos"},
		"s3":       {"REEL_DATA_DIR": t.TempDir(), "REEL_BLOB_URL": "s3://bucket?endpoint=localhost:9000"},
	} {
		cfg := load(t, vars)
		if _, err := backup.Backup(ctx, cfg, t.TempDir(), "test"); !errors.Is(err, backup.ErrNotEmbedded) || !strings.Contains(err.Error(), "docs/operations.md") {
			t.Errorf("%s: backup: %v", name, err)
		}
		if _, err := backup.Restore(ctx, cfg, t.TempDir()); !errors.Is(err, backup.ErrNotEmbedded) {
			t.Errorf("%s: restore: %v", name, err)
		}
	}
	// No database yet: nothing to back up, and nothing is created.
	dir := t.TempDir()
	if _, err := backup.Backup(ctx, load(t, map[string]string{"REEL_DATA_DIR": dir}), t.TempDir(), "test"); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("backup without a database: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("backup created %v", entries)
	}
}

// rewrite replaces a file by a new one (never writing into it: backed-up
// blobs are hard links of the live ones).
func rewrite(p, content string) error {
	if err := os.Remove(p); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o600)
}

func editManifest(dir string, edit func(*backup.Manifest)) error {
	m, err := backup.ReadManifest(dir)
	if err != nil {
		return err
	}
	edit(&m)
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return rewrite(filepath.Join(dir, backup.ManifestName), string(b))
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if fi.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
}
