package compat_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/reel-video/reel/internal/compat"
	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/media/mediatest"
	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/authn/authntest"
	"github.com/reel-video/reel/internal/platform/blob"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
	"github.com/reel-video/reel/internal/platform/outbox"
	"github.com/reel-video/reel/internal/platform/sqldb"
	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
	"github.com/reel-video/reel/internal/storage"
	"github.com/reel-video/reel/internal/usage"
	"github.com/reel-video/reel/internal/videos"
)

// daily is the usage service as the videos service's egress: the counts
// go straight in, without the meter's batching.
type daily struct{ s *usage.Service }

func (d daily) Allowance(ctx context.Context, user string) (int64, error) {
	return d.s.Allowance(ctx, user)
}
func (d daily) Add(user string, n int64) {
	_ = d.s.AddEgress(context.Background(), "", map[string]int64{user: n})
}

// venv is the videos part alone, as the videos process serves it: the
// videos service on a real database with real ffprobe and disk blobs, the
// real storage service for its quota, and the media route of its v1
// handler behind the same socket.
type venv struct {
	url     string
	iss     *authntest.Issuer
	storage *storage.Service
	usage   *usage.Service
	video   []byte // a real MP4
}

// onceProber probes and cuts a poster with ffmpeg the first time only,
// then answers the same for every upload: for tests that upload the same
// clip many times and are about listing, not probing.
type onceProber struct {
	real   *media.Prober
	dir    string
	mu     sync.Mutex
	info   *media.Info
	poster []byte
}

func (p *onceProber) Probe(ctx context.Context, path string) (media.Info, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.info == nil {
		info, err := p.real.Probe(ctx, path)
		if err != nil {
			return info, err
		}
		p.info = &info
	}
	return *p.info, nil
}

func (p *onceProber) Poster(ctx context.Context, path string, info media.Info) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.poster == nil {
		jpeg, err := p.real.Poster(ctx, path, info)
		if err != nil {
			return "", err
		}
		defer func() { _ = os.Remove(jpeg) }()
		if p.poster, err = os.ReadFile(jpeg); err != nil {
			return "", err
		}
	}
	// Finalise removes the file it is given: a fresh copy each time.
	f, err := os.CreateTemp(p.dir, "poster-*.jpg")
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write(p.poster); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// withVideos runs fn with a fresh venv on each engine. fast probes only
// the first upload (onceProber).
func withVideos(t *testing.T, fn func(t *testing.T, e *venv), fast ...bool) {
	t.Helper()
	mediatest.Tools(t)
	clip, err := os.ReadFile(mediatest.Video(t, "", 1, 64, 48))
	must(t, err)
	sqldbtest.Open(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		must(t, sqldb.Migrate(ctx, db, storage.Migrations(), storage.MigrationTable))
		must(t, sqldb.Migrate(ctx, db, usage.Migrations(), usage.MigrationTable))
		for _, ob := range []string{"videos_outbox", "storage_outbox", "usage_outbox"} {
			must(t, sqldb.Migrate(ctx, db, outbox.Migrations(ob, db.Dialect), outbox.VersionTable(ob)))
		}
		st := storage.New(db, outbox.New(db, "storage_outbox"), storage.Config{DefaultQuota: 50 << 20}, obs.Discard())
		us := usage.New(db, outbox.New(db, "usage_outbox"), usage.Config{DailyUpload: 100 << 20, DailyEgress: 1 << 30}, obs.Discard())
		d := daily{us}
		disk, err := blob.NewDisk(filepath.Join(t.TempDir(), "blobs"))
		must(t, err)
		var prober videos.Prober = media.NewProber(0)
		if len(fast) > 0 && fast[0] {
			prober = &onceProber{real: media.NewProber(0), dir: t.TempDir()}
		}
		must(t, videos.MigrateQueue(ctx, db))
		svc, err := videos.New(ctx, db, outbox.New(db, "videos_outbox"), videos.Deps{
			Blobs: disk, Prober: prober, Quota: st, Limit: us, Egress: d,
		}, videos.Config{
			MaxUploadSize: 64 << 20, PlaybackTTL: time.Hour, SpoolDir: t.TempDir(),
			Workers: &videos.WorkerConfig{PollInterval: 50 * time.Millisecond}, FairStep: -1,
		}, obs.Discard())
		must(t, err)
		// The job workers, as the app runs them.
		wctx, stop := context.WithCancel(ctx)
		var worker sync.WaitGroup
		worker.Go(func() { _ = svc.RunJobs(wctx) })
		t.Cleanup(func() { stop(); worker.Wait() })
		iss := authntest.New(t)
		mux := http.NewServeMux()
		videos.NewHandler(svc, iss.Verifier(), videos.HandlerConfig{}).Routes(mux)
		compat.NewVideos(svc, iss.Verifier(), compat.VideosConfig{Limits: compat.ServiceLimits{Storage: st, Usage: us}}).Routes(mux)
		srv := httptest.NewServer(httpx.Wrap(mux, httpx.MiddlewareConfig{Logger: obs.Discard()}))
		t.Cleanup(srv.Close)
		fn(t, &venv{url: srv.URL, iss: iss, storage: st, usage: us, video: clip})
	}, videos.Migrations(), videos.MigrationTable)
}

// part is one part of a multipart body: a file when filename is set.
type part struct {
	name, filename string
	data           []byte
}

// multipartBody encodes parts in order (the original client sends the
// file first, then the title).
func multipartBody(t testing.TB, parts ...part) ([]byte, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		must(t, err)
		_, err = w.Write(p.data)
		must(t, err)
	}
	must(t, mw.Close())
	return b.Bytes(), mw.FormDataContentType()
}

func (e *venv) upload(t testing.TB, token string, parts ...part) reply {
	t.Helper()
	b, ct := multipartBody(t, parts...)
	return call(t, e.url, req{method: "POST", path: "/api/videos/upload", token: token, body: b, header: map[string]string{"Content-Type": ct}})
}

func (e *venv) user(t testing.TB) (id, token string) {
	id = authntest.NewUserID()
	return id, e.iss.Token(t, id, authn.RoleUser)
}

// get fetches a URL as a browser's <video src> or <img src> would: no
// token, no header.
func get(t testing.TB, url string) (int, string, []byte) {
	t.Helper()
	res, err := http.Get(url)
	must(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	must(t, err)
	return res.StatusCode, res.Header.Get("Content-Type"), b
}

// getPoster is get for a poster, which is cut after the upload has been
// answered, on idle cores only (which a busy test machine may keep from
// it for a while). Until then the URL answers a placeholder image that
// must not be cached: that is asked again for up to a minute, and a
// placeholder still there then fails the test.
func getPoster(t testing.TB, url string) (int, string, []byte) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := http.Get(url)
		must(t, err)
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		must(t, err)
		if res.Header.Get("Cache-Control") != "no-store" {
			return res.StatusCode, res.Header.Get("Content-Type"), b
		}
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/jpeg" {
			t.Fatalf("poster placeholder: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		if time.Now().After(deadline) {
			t.Fatalf("the poster of %s was never cut", url)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poster derives the poster URL as the original client does:
// filepath.replace('.mp4', '.jpg'), which replaces the first occurrence.
func poster(filepath string) string { return strings.Replace(filepath, ".mp4", ".jpg", 1) }

func videoRows(t testing.TB, r reply) ([]map[string]any, int) {
	t.Helper()
	m := r.json(t)
	if keysOf(m) != "total,videos" {
		t.Fatalf("videos answer %s", r.body)
	}
	raw := m["videos"].([]any)
	rows := make([]map[string]any, len(raw))
	for i, v := range raw {
		rows[i] = v.(map[string]any)
		checkRow(t, rows[i])
	}
	return rows, int(m["total"].(float64))
}

// checkRow checks a video row's fields and that its filepath pair plays
// and shows the poster.
func checkRow(t testing.TB, row map[string]any) {
	t.Helper()
	if k := keysOf(row); k != "deleted_at,filename,filepath,id,size_mb,title,uploaded_at,user_id" {
		t.Fatalf("video row fields %s", k)
	}
	if row["filename"] != row["id"] || row["deleted_at"] != nil {
		t.Fatalf("video row %v", row)
	}
	fp := row["filepath"].(string)
	if !strings.HasSuffix(fp, "/video.mp4") || strings.Count(fp, ".mp4") != 1 {
		t.Fatalf("filepath %q", fp)
	}
}

func TestVideosRoutes(t *testing.T) {
	withVideos(t, func(t *testing.T, e *venv) {
		ann, annTok := e.user(t)
		bob, bobTok := e.user(t)
		admin := e.iss.Token(t, authntest.NewUserID(), authn.RoleAdmin)
		file := part{name: "video", filename: "clip.mp4", data: e.video}
		title := part{name: "title", data: []byte("My clip")}

		// The original client's upload: file first, then the title.
		r := e.upload(t, annTok, file, title)
		expect(t, "upload", r, 200, nil)
		m := r.json(t)
		if keysOf(m) != "file,message" || m["message"] != "File uploaded successfully" {
			t.Fatalf("upload answer %s", r.body)
		}
		up := m["file"].(map[string]any)
		checkRow(t, up)
		id := up["id"].(string)
		if up["user_id"] != ann || up["title"] != "My clip" || up["size_mb"] != round2(float64(len(e.video))/(1<<20)) ||
			!strings.HasPrefix(up["filepath"].(string), e.url+"/media/") {
			t.Fatalf("uploaded row %v", up)
		}

		// The URL pair: the video and, with .mp4 replaced by .jpg, its
		// poster, both fetched without any header.
		r = call(t, e.url, req{method: "GET", path: "/api/videos/stream/" + id, token: bobTok})
		expect(t, "stream", r, 200, nil)
		u := r.json(t)
		if keysOf(u) != "url" {
			t.Fatalf("stream answer %s", r.body)
		}
		url := u["url"].(string)
		if !strings.HasSuffix(url, ".mp4") || strings.Count(url, ".mp4") != 1 {
			t.Fatalf("stream url %q", url)
		}
		status, ct, b := get(t, url)
		if status != 200 || ct != "video/mp4" || !bytes.Equal(b, e.video) {
			t.Fatalf("video: %d %s %d bytes", status, ct, len(b))
		}
		status, ct, b = getPoster(t, poster(url))
		if status != 200 || ct != "image/jpeg" || len(b) < 3 || !bytes.Equal(b[:3], []byte{0xff, 0xd8, 0xff}) {
			t.Fatalf("poster: %d %s %d bytes", status, ct, len(b))
		}
		status, ct, _ = getPoster(t, poster(up["filepath"].(string)))
		if status != 200 || ct != "image/jpeg" {
			t.Fatalf("poster of the uploaded row: %d %s", status, ct)
		}

		// Storage is 1 MiB and almost full for Cy, Dee used up her day.
		cy, cyTok := e.user(t)
		must(t, e.storage.SetQuota(context.Background(), cy, 1<<20))
		must(t, e.storage.Charge(context.Background(), cy, "videos/other/original", 1<<20-100))
		dee, deeTok := e.user(t)
		lim := int64(3 << 19)
		must(t, e.usage.SetLimits(context.Background(), dee, usage.Limits{DailyUpload: &lim}))
		r0, err := e.usage.ReserveUpload(context.Background(), dee, lim, time.Hour)
		must(t, err)
		must(t, e.usage.CommitUpload(context.Background(), r0.ID, lim))
		_ = bob

		notVideo, notVideoCT := multipartBody(t, part{name: "video", filename: "notes.mp4", data: []byte("hello, this is text")}, title)
		json := []byte(`{"title":"x"}`)
		cases := []struct {
			name   string
			q      req
			status int
			want   map[string]any
		}{
			{"upload no token", req{method: "POST", path: "/api/videos/upload"}, 401, msg("Token not provided")},
			{"upload bad token", req{method: "POST", path: "/api/videos/upload", token: "a.b.c"}, 401, msg("Invalid or expired token")},
			{"upload not multipart", req{method: "POST", path: "/api/videos/upload", token: annTok, body: json}, 400, msg("No video file provided")},
			{"upload not a video", req{method: "POST", path: "/api/videos/upload", token: annTok, body: notVideo, header: map[string]string{"Content-Type": notVideoCT}}, 415, nil},
			{"feed no token", req{method: "GET", path: "/api/videos/stream"}, 401, msg("Token not provided")},
			{"feed bad start", req{method: "GET", path: "/api/videos/stream?start=-3", token: annTok}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
			{"user other's", req{method: "GET", path: "/api/videos/user/" + ann, token: bobTok}, 403, msg("Unauthorized to fetch this user's videos")},
			{"user other's by admin", req{method: "GET", path: "/api/videos/user/" + ann, token: admin}, 403, msg("Unauthorized to fetch this user's videos")},
			{"user bad start", req{method: "GET", path: "/api/videos/user/" + ann + "?start=x", token: annTok}, 400, msgErr("Invalid start value", "start must be a whole number of at least 0")},
			{"stream no token", req{method: "GET", path: "/api/videos/stream/" + id}, 401, msg("Token not provided")},
			{"stream unknown", req{method: "GET", path: "/api/videos/stream/" + uuid.NewString(), token: annTok}, 404, msg("Video not found")},
			{"stream not an id", req{method: "GET", path: "/api/videos/stream/clip.mp4", token: annTok}, 404, msg("Video not found")},
			{"delete no token", req{method: "DELETE", path: "/api/videos/delete/" + id}, 401, msg("Token not provided")},
			{"delete other's", req{method: "DELETE", path: "/api/videos/delete/" + id, token: bobTok}, 403, msg("Unauthorized or video not found")},
			{"delete other's by admin", req{method: "DELETE", path: "/api/videos/delete/" + id, token: admin}, 403, msg("Unauthorized or video not found")},
			{"delete unknown", req{method: "DELETE", path: "/api/videos/delete/" + uuid.NewString(), token: annTok}, 403, msg("Unauthorized or video not found")},
			{"delete-all no token", req{method: "DELETE", path: "/api/videos/delete-all"}, 401, msg("Token not provided")},
		}
		for _, tc := range cases {
			expect(t, tc.name, call(t, e.url, tc.q), tc.status, tc.want)
		}
		for _, tc := range []struct {
			name   string
			token  string
			parts  []part
			status int
			want   map[string]any
		}{
			{"upload without a file", annTok, []part{title}, 400, msg("No video file provided")},
			{"upload without a title", annTok, []part{file}, 400, msg("Video title is required")},
			{"upload with a blank title", annTok, []part{file, {name: "title", data: []byte("  ")}}, 400, msg("Video title is required")},
			{"upload over the storage quota", cyTok, []part{file, title}, 400, msg("Exceeding total storage limit of 1MB")},
			{"upload over the daily limit", deeTok, []part{file, title}, 400, msg("Exceeding daily bandwidth limit of 1.50 MB")},
		} {
			expect(t, tc.name, e.upload(t, tc.token, tc.parts...), tc.status, tc.want)
		}
		r = call(t, e.url, req{method: "POST", path: "/api/videos/upload", token: annTok, body: notVideo, header: map[string]string{"Content-Type": notVideoCT}})
		if b := r.json(t); b["message"] != "Unsupported video file" || b["error"] == nil {
			t.Fatalf("not a video: %s", r.body)
		}

		// Owner deletes: gone from the feed, the URL stops playing.
		expect(t, "delete", call(t, e.url, req{method: "DELETE", path: "/api/videos/delete/" + id, token: annTok}), 200, msg("Video deleted successfully (soft delete)"))
		expect(t, "stream deleted", call(t, e.url, req{method: "GET", path: "/api/videos/stream/" + id, token: annTok}), 404, msg("Video not found"))
		if status, _, _ := get(t, url); status != 404 {
			t.Fatalf("deleted video still plays: %d", status)
		}
		_, total := videoRows(t, call(t, e.url, req{method: "GET", path: "/api/videos/stream", token: annTok}))
		if total != 0 {
			t.Fatalf("feed total after delete %d", total)
		}
		// Its bytes no longer count.
		used, err := e.storage.Usage(context.Background(), ann)
		must(t, err)
		if used.UsedBytes != 0 {
			t.Fatalf("used after delete %d", used.UsedBytes)
		}
		_ = dee
	})
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }

func TestVideosPagination(t *testing.T) {
	withVideos(t, func(t *testing.T, e *venv) {
		ann, annTok := e.user(t)
		bob, bobTok := e.user(t)
		file := part{name: "video", filename: "clip.mp4", data: e.video}
		const annCount, bobCount = 17, 2
		for i := 0; i < annCount+bobCount; i++ {
			tok := annTok
			if i >= annCount {
				tok = bobTok
			}
			expect(t, "upload", e.upload(t, tok, part{name: "title", data: []byte(fmt.Sprintf("clip %02d", i))}, file), 200, nil)
		}

		// The feed: everyone's, 16 a page, newest first.
		seen := map[string]bool{}
		for _, p := range []struct{ start, rows int }{{0, 16}, {16, 3}, {19, 0}, {500, 0}} {
			rows, total := videoRows(t, call(t, e.url, req{method: "GET", path: fmt.Sprintf("/api/videos/stream?start=%d", p.start), token: annTok}))
			if total != annCount+bobCount || len(rows) != p.rows {
				t.Fatalf("feed start=%d: total %d, %d rows", p.start, total, len(rows))
			}
			for _, row := range rows {
				if seen[row["id"].(string)] {
					t.Fatalf("feed start=%d: row repeated", p.start)
				}
				seen[row["id"].(string)] = true
			}
			if p.start == 0 && rows[0]["title"] != "clip 18" {
				t.Fatalf("feed not newest first: %v", rows[0]["title"])
			}
		}
		if len(seen) != annCount+bobCount {
			t.Fatalf("%d distinct rows", len(seen))
		}
		// A position deeper than any client pages is refused, not scanned.
		if r := call(t, e.url, req{method: "GET", path: "/api/videos/stream?start=100001", token: annTok}); r.status != 400 {
			t.Fatalf("feed start=100001: %d", r.status)
		}

		// Ann's own: only hers.
		rows, total := videoRows(t, call(t, e.url, req{method: "GET", path: "/api/videos/user/" + ann + "?start=16", token: annTok}))
		if total != annCount || len(rows) != 1 || rows[0]["user_id"] != ann || rows[0]["title"] != "clip 00" {
			t.Fatalf("ann's page 2: total %d, %v", total, rows)
		}
		rows, total = videoRows(t, call(t, e.url, req{method: "GET", path: "/api/videos/user/" + bob, token: bobTok}))
		if total != bobCount || len(rows) != bobCount {
			t.Fatalf("bob's: total %d, %d rows", total, len(rows))
		}
		// Every row's URL pair plays.
		for _, row := range rows {
			fp := row["filepath"].(string)
			if status, ct, _ := get(t, fp); status != 200 || ct != "video/mp4" {
				t.Fatalf("row video: %d %s", status, ct)
			}
			if status, ct, _ := getPoster(t, poster(fp)); status != 200 || ct != "image/jpeg" {
				t.Fatalf("row poster: %d %s", status, ct)
			}
		}

		// Delete-all empties Ann's list and leaves Bob's.
		expect(t, "delete-all", call(t, e.url, req{method: "DELETE", path: "/api/videos/delete-all", token: annTok}), 200, msg("All videos deleted successfully (soft delete)"))
		if _, total := videoRows(t, call(t, e.url, req{method: "GET", path: "/api/videos/user/" + ann, token: annTok})); total != 0 {
			t.Fatalf("ann's after delete-all: %d", total)
		}
		if _, total := videoRows(t, call(t, e.url, req{method: "GET", path: "/api/videos/stream", token: annTok})); total != bobCount {
			t.Fatalf("feed after delete-all: %d", total)
		}
	}, true)
}
