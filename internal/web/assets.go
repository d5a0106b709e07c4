package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// assets are the embedded static files, served under
// /static/<version>/<file>, where version is a hash of all of them: a
// release's files get new URLs, so browsers may keep them for a year. One
// version for the whole set (rather than one hash per file) keeps the
// modules' relative imports working without rewriting them.
type assets struct {
	version string
	files   map[string]asset
}

type asset struct {
	body  []byte
	etag  string
	ctype string
}

// built is the time assets claim as their modification time (they have
// none: they are in the binary).
var built = time.Unix(0, 0)

func loadAssets() (*assets, error) {
	as := &assets{files: map[string]asset{}}
	var names []string
	err := fs.WalkDir(files, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	all := sha256.New()
	for _, p := range names {
		b, err := files.ReadFile(p)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(p, "static/")
		ctype := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) { // not left to the system's MIME tables
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		case ".svg":
			ctype = "image/svg+xml"
		}
		as.files[name] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ctype}
		all.Write([]byte(name))
		all.Write(sum[:])
	}
	as.version = hex.EncodeToString(all.Sum(nil)[:6])
	return as, nil
}

// url is the address of a static file in this release.
func (as *assets) url(name string) string { return "/static/" + as.version + "/" + name }

// serve answers a static file. An older release's version (a page loaded
// before an upgrade) gets today's file, revalidated rather than kept.
func (as *assets) serve(w http.ResponseWriter, r *http.Request) {
	f, ok := as.files[r.PathValue("file")]
	if !ok {
		httpx.Error(w, r, errs.ErrNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", f.etag)
	if r.PathValue("version") == as.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, "", built, bytes.NewReader(f.body))
}
