package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reel-video/reel/internal/config"
	"github.com/reel-video/reel/internal/platform/blob"
)

// ErrCorrupt means a backup's files do not match its manifest.
var ErrCorrupt = errors.New("the backup does not match its manifest")

// partial marks the files and directories a restore is writing; they
// take their real names once every file has matched the manifest.
const partial = ".restoring"

// Restore puts the backup in src into the embedded setup cfg describes,
// which must be empty: no data directory or an empty one, no database
// files, an empty blob directory. Every file is checked against the
// manifest as it is copied; on any mismatch nothing is left behind. The
// databases must be laid out as in the backup (the same services sharing
// a file).
func Restore(ctx context.Context, cfg *config.Config, src string) (_ Summary, err error) {
	gs, blobRoot, err := layout(cfg)
	if err != nil {
		return Summary{}, err
	}
	m, err := ReadManifest(src)
	if err != nil {
		return Summary{}, err
	}
	dbs, err := match(m, gs)
	if err != nil {
		return Summary{}, err
	}
	if err := emptyDir(cfg.DataDir, "the data directory"); err != nil {
		return Summary{}, fmt.Errorf("%w: reel restore only restores into a new, empty data directory", err)
	}
	for _, g := range gs {
		for _, p := range []string{g.file, g.file + "-wal", g.file + "-shm", g.file + partial} {
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				return Summary{}, fmt.Errorf("%s exists: reel restore only restores into an empty setup", p)
			}
		}
	}
	if err := emptyDir(blobRoot, "the blob directory"); err != nil {
		return Summary{}, fmt.Errorf("%w: reel restore only restores into an empty setup", err)
	}
	stage := blobRoot + partial
	if _, err := os.Lstat(stage); !errors.Is(err, fs.ErrNotExist) {
		return Summary{}, fmt.Errorf("%s exists (left by an interrupted restore?): remove it first", stage)
	}

	// Everything is written under a partial name, checked, then renamed.
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				_ = os.RemoveAll(p)
			}
		}
	}()
	var sum Summary
	byPath := map[string]File{}
	for _, f := range m.Files {
		byPath[f.Path] = f
	}
	for i, g := range gs {
		f := byPath[dbs[i]]
		if err := os.MkdirAll(filepath.Dir(g.file), 0o750); err != nil {
			return Summary{}, err
		}
		written = append(written, g.file+partial)
		if _, err := copyFile(filepath.Join(src, filepath.FromSlash(f.Path)), g.file+partial, &f); err != nil {
			return Summary{}, restoreErr(err)
		}
		sum.Databases++
		sum.Bytes += f.Size
	}
	written = append(written, stage)
	for _, f := range m.Files {
		key, ok := strings.CutPrefix(f.Path, blobDir+"/")
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		dst := filepath.Join(stage, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
			return Summary{}, err
		}
		if _, err := copyFile(filepath.Join(src, filepath.FromSlash(f.Path)), dst, &f); err != nil {
			return Summary{}, restoreErr(err)
		}
		sum.Blobs++
		sum.Bytes += f.Size
	}

	// All matched: give everything its real name.
	for _, g := range gs {
		if err := os.Rename(g.file+partial, g.file); err != nil {
			return Summary{}, err
		}
		written = append(written, g.file)
	}
	if err := os.MkdirAll(stage, 0o750); err != nil {
		return Summary{}, err
	}
	if err := os.Remove(blobRoot); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Summary{}, err
	}
	if err := os.Rename(stage, blobRoot); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// restoreErr says which file of the backup is missing.
func restoreErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is missing", ErrCorrupt, pe.Path)
	}
	return err
}

// ReadManifest reads and checks the manifest of the backup in dir: its
// format, and that its paths stay inside the backup and name what a
// backup holds.
func ReadManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("%s has no %s: not a reel backup, or one that did not finish", dir, ManifestName)
	}
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: %s: %w", ErrCorrupt, ManifestName, err)
	}
	if m.Format != Format {
		return m, fmt.Errorf("%s is a backup of format %d; this reel reads format %d", dir, m.Format, Format)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if seen[f.Path] || !validPath(f.Path) || f.Size < 0 || len(f.SHA256) != 64 {
			return m, fmt.Errorf("%w: bad entry %q in %s", ErrCorrupt, f.Path, ManifestName)
		}
		seen[f.Path] = true
	}
	for _, d := range m.Databases {
		if !seen[d.Path] || !strings.HasPrefix(d.Path, dbDir+"/") {
			return m, fmt.Errorf("%w: database %q is not among the files of %s", ErrCorrupt, d.Path, ManifestName)
		}
	}
	return m, nil
}

// validPath accepts databases/<name>.db and blobs/<valid key>.
func validPath(p string) bool {
	if name, ok := strings.CutPrefix(p, dbDir+"/"); ok {
		return blob.ValidateKey(name) == nil && !strings.Contains(name, "/") && path.Ext(name) == ".db"
	}
	if key, ok := strings.CutPrefix(p, blobDir+"/"); ok {
		return blob.ValidateKey(key) == nil
	}
	return false
}

// match finds, for each database group of the configuration, the
// backup's file holding exactly its services.
func match(m Manifest, gs []group) ([]string, error) {
	out := make([]string, len(gs))
	for i, g := range gs {
		j := slices.IndexFunc(m.Databases, func(d Database) bool {
			return slices.Equal(sorted(d.Services), sorted(g.services))
		})
		if j < 0 {
			var have []string
			for _, d := range m.Databases {
				have = append(have, "["+strings.Join(d.Services, " ")+"]")
			}
			return nil, fmt.Errorf("the configuration keeps the services [%s] in one database, but the backup's databases hold %s: restore with the database settings (REEL_DATABASE_URL, REEL_<SERVICE>_DATABASE_URL) the backup was made with",
				strings.Join(g.services, " "), strings.Join(have, ", "))
		}
		out[i] = m.Databases[j].Path
	}
	return out, nil
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
