package videos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	xslog "golang.org/x/exp/slog"

	"github.com/reel-video/reel/internal/platform/authn"
	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// UploadsPath is where the tus endpoint is mounted.
const UploadsPath = "/api/v1/uploads"

// VideoIDHeader names the video a completed tus upload made, on the
// answer to its last PATCH and to HEAD afterwards.
const VideoIDHeader = "Reel-Video-Id"

// ErrDeferredLength refuses a tus upload that does not declare its length:
// admission reserves the declared size before any byte is accepted.
var ErrDeferredLength = errs.New(errs.Invalid, "length_required", "declare Upload-Length: an upload is admitted by its size, deferred lengths are not accepted")

// ErrConcatenation refuses the tus concatenation extension, not offered.
var ErrConcatenation = errs.New(errs.Invalid, "concatenation_unsupported", "the concatenation extension is not supported")

// TUS serves tus 1.0.0 resumable uploads (creation, termination and
// checksum extensions) with tusd as a library; checksums are verified by
// reel before tusd takes a chunk (http_tus_checksum.go). Bytes wait in tusd's file store on
// local disk; every request is authenticated and an upload is visible
// only to its creator. Creation admits the declared Upload-Length against
// the quota and the daily limit (the pre-create hook), completion runs the
// same finalisation as a multipart upload, and termination or expiry
// gives everything back and deletes the partial file.
//
// Locking is in the videos database (tuslock.go, decision 0017), so that
// replicas sharing the tus directory (REEL_TUS_DIR) never write one upload
// at once.
type TUS struct {
	svc    *Service
	auth   *authn.Verifier
	dir    string
	store  filestore.FileStore
	locker *tusLocker
	h      *tusd.UnroutedHandler
	log    *slog.Logger
	// trusted are the proxies whose forwarding headers are believed.
	trusted []netip.Prefix

	// active counts requests in flight per upload id, so that expiry
	// never takes the lock from (and so interrupts) a live transfer.
	mu     sync.Mutex
	active map[string]int
	// started is when this process built the endpoint: files last written
	// before were written by a process that is gone.
	started time.Time
}

// NewTUS builds the tus endpoint; dir holds the partial uploads.
// Forwarded headers are believed only from trusted (proxy) peers.
func NewTUS(svc *Service, auth *authn.Verifier, dir string, trusted []netip.Prefix, log *slog.Logger) (*TUS, error) {
	svc.mustServe()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tus upload directory: %w", err)
	}
	t := &TUS{svc: svc, auth: auth, dir: dir, trusted: trusted, log: log, locker: newTUSLocker(svc.db, log), active: map[string]int{},
		started: time.Now()}
	t.store = filestore.New(dir)
	t.store.DirModePerm, t.store.FileModePerm = 0o700, 0o600
	composer := tusd.NewStoreComposer()
	// Core and termination only: no concatenation, no deferred length
	// (admission needs the size), no download (videos play from /media).
	composer.UseCore(t.store)
	composer.UseTerminater(t.store)
	t.locker.fail = t.problem
	composer.UseLocker(t.locker)
	h, err := tusd.NewUnroutedHandler(tusd.Config{
		StoreComposer:              composer,
		BasePath:                   UploadsPath + "/",
		MaxSize:                    svc.cfg.MaxUploadSize,
		DisableDownload:            true,
		DisableConcatenation:       true,
		Cors:                       &tusd.CorsConfig{Disable: true}, // the app's CORS middleware answers
		RespectForwardedHeaders:    true,                            // Location as the client reached us, through the gateway too (untrusted peers' headers are dropped first)
		Logger:                     xslog.New(tusLog{h: log.Handler()}),
		PreUploadCreateCallback:    t.preCreate,
		PreFinishResponseCallback:  t.preFinish,
		PreUploadTerminateCallback: t.preTerminate,
		AcquireLockTimeout:         tusLockWait,
	})
	if err != nil {
		return nil, fmt.Errorf("tus handler: %w", err)
	}
	t.h = h
	return t, nil
}

// Routes registers the tus routes, each pattern explicit.
func (t *TUS) Routes(r httpx.Router) {
	strip := func(f http.HandlerFunc) http.Handler {
		// tusd expects the path without its base (the upload id alone).
		// problems wraps tusd's middleware, which binds the writer it is
		// given into the request's context for the handlers to answer on.
		return http.StripPrefix(UploadsPath, t.forwarded(problems(t.h.Middleware(f))))
	}
	// OPTIONS is protocol discovery (Tus-Version, Tus-Extension,
	// Tus-Max-Size) and needs no credentials.
	discovery := strip(func(w http.ResponseWriter, r *http.Request) {})
	r.Handle("OPTIONS "+UploadsPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		discovery.ServeHTTP(checksumOptions{w}, r)
	}))
	r.Handle("POST "+UploadsPath, t.auth.Require(httpx.HandlerFunc(t.create(strip(t.h.PostFile)))))
	r.Handle("HEAD "+UploadsPath+"/{id}", t.auth.Require(t.owned(strip(t.h.HeadFile), http.MethodHead)))
	r.Handle("PATCH "+UploadsPath+"/{id}", t.auth.Require(t.owned(strip(t.h.PatchFile), http.MethodPatch)))
	r.Handle("DELETE "+UploadsPath+"/{id}", t.auth.Require(t.owned(strip(t.h.DelFile), http.MethodDelete)))
}

// forwarded drops the forwarding headers of a peer that is no trusted
// proxy: tusd builds an upload's Location from them, and a client could
// otherwise point it at a host of its choosing.
func (t *TUS) forwarded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !peerTrusted(r, t.trusted) {
			for _, h := range []string{"Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				r.Header.Del(h)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// create checks what tusd would otherwise accept or answer in its own
// words: a deferred length, concatenation.
func (t *TUS) create(next http.Handler) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Upload-Defer-Length") != "" || r.Header.Get("Upload-Length") == "" {
			return ErrDeferredLength
		}
		if r.Header.Get("Upload-Concat") != "" {
			return ErrConcatenation
		}
		next.ServeHTTP(w, r)
		return nil
	}
}

// owned admits a request on an upload only from its creator, and answers
// HEAD for a completed upload (whose file is gone) with its final offset
// and the video it made, so a client that lost the last PATCH's answer
// learns it finished. A HEAD, or a PATCH at the final offset, of an open
// upload whose bytes have all arrived finalises it first (a finalisation
// that died: http_tus_finish.go).
func (t *TUS) owned(next http.Handler, method string) http.Handler {
	return httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		u, err := t.svc.Upload(r.Context(), caller(r), id)
		if err != nil {
			return err
		}
		if u.Done() && method == http.MethodHead {
			answerDone(w, method, u.Size, u.VideoID)
			return nil
		}
		if !u.Open() {
			return ErrUploadNotFound
		}
		if method == http.MethodHead || (method == http.MethodPatch && r.Header.Get("Upload-Offset") == strconv.FormatInt(u.Size, 10)) {
			v, done, err := t.finish(r.Context(), id, time.Second)
			if err != nil {
				return err
			}
			if done {
				answerDone(w, method, u.Size, v.ID)
				return nil
			}
		}
		if method == http.MethodPatch {
			if err := t.svc.TouchUpload(r.Context(), id); err != nil {
				return err
			}
			if r.Header.Get("Upload-Checksum") != "" {
				done, err := t.verifyChunk(r, u.Size)
				if err != nil {
					checksumProblem(w, r, err)
					return nil
				}
				defer done()
			}
		}
		t.enter(id)
		defer t.leave(id)
		next.ServeHTTP(w, r)
		return nil
	})
}

func (t *TUS) enter(id string) {
	t.mu.Lock()
	t.active[id]++
	t.mu.Unlock()
}

func (t *TUS) leave(id string) {
	t.mu.Lock()
	if t.active[id]--; t.active[id] <= 0 {
		delete(t.active, id)
	}
	t.mu.Unlock()
}

func (t *TUS) busy(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[id] > 0
}

func (t *TUS) preCreate(hook tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	ctx := hook.Context
	c, ok := authn.CallerFrom(ctx)
	if !ok {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, t.problem(ctx, authn.ErrInvalidToken)
	}
	if hook.Upload.SizeIsDeferred {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, t.problem(ctx, ErrDeferredLength)
	}
	md := hook.Upload.MetaData
	meta := Meta{Title: md["title"], Description: md["description"], Filename: md["filename"]}
	id, err := t.svc.CreateUpload(ctx, c, hook.Upload.Size, meta)
	if err != nil {
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, t.problem(ctx, err)
	}
	meta, _ = meta.Validate()
	// Only what reel uses is kept in tusd's .info file.
	kept := tusd.MetaData{"title": meta.Title, "filename": meta.Filename}
	if meta.Description != "" {
		kept["description"] = meta.Description
	}
	return tusd.HTTPResponse{}, tusd.FileInfoChanges{ID: id, MetaData: kept}, nil
}

func (t *TUS) preFinish(hook tusd.HookEvent) (tusd.HTTPResponse, error) {
	ctx, id := hook.Context, hook.Upload.ID
	path := hook.Upload.Storage[filestore.StorageKeyPath]
	if path == "" {
		path = filepath.Join(t.dir, id)
	}
	// The files go once the upload is closed: the bytes are in the blob
	// store, or they were refused and everything released.
	v, err := t.complete(ctx, id, path, hook.Upload.Size)
	if err != nil {
		return tusd.HTTPResponse{}, t.problem(ctx, err)
	}
	return tusd.HTTPResponse{Header: tusd.HTTPHeader{VideoIDHeader: v.ID}}, nil
}

func (t *TUS) preTerminate(hook tusd.HookEvent) (tusd.HTTPResponse, error) {
	if _, err := t.svc.AbortUpload(hook.Context, hook.Upload.ID, false); err != nil {
		return tusd.HTTPResponse{}, t.problem(hook.Context, err)
	}
	return tusd.HTTPResponse{}, nil
}

// removeFiles deletes an upload's bytes and tusd's .info file.
func (t *TUS) removeFiles(id string) {
	for _, p := range []string{filepath.Join(t.dir, id), filepath.Join(t.dir, id+".info"), filepath.Join(t.dir, id+finalSuffix)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.log.Warn("remove tus upload file", "path", p, "err", err)
		}
	}
}

// Expire first finishes the open uploads whose bytes have all arrived
// (http_tus_finish.go); then it ends resumable uploads left idle past
// their expiry: it releases
// their reservations and deletes their partial files. Run it
// periodically (in every replica: each expires the uploads whose files it
// holds, and any replica those whose replica has been gone for another
// expiry period). It also deletes partial files whose upload is closed or
// unknown, left by a crash or closed by another replica.
func (t *TUS) Expire(ctx context.Context) error {
	// Complete uploads are finished, not expired.
	if err := t.finishComplete(ctx); err != nil {
		return fmt.Errorf("finish complete uploads: %w", err)
	}
	ups, err := t.svc.ExpiredUploads(ctx)
	if err != nil {
		return err
	}
	var errsOut []error
	now := t.svc.Now()
	for _, u := range ups {
		if t.busy(u.ID) {
			continue // a transfer is running: not idle after all
		}
		if !t.holds(u.ID) && now.Sub(u.ExpiresAt) < t.svc.UploadExpiry() {
			continue // another replica's upload: its own job expires it
		}
		if err := t.expireOne(ctx, u.ID); err != nil {
			errsOut = append(errsOut, err)
		}
	}
	if err := t.sweepOrphans(ctx); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := t.locker.sweep(ctx, time.Now().Add(-t.svc.UploadExpiry())); err != nil {
		errsOut = append(errsOut, err)
	}
	return errors.Join(errsOut...)
}

// holds reports whether this replica has the upload's file.
func (t *TUS) holds(id string) bool {
	_, err := os.Stat(filepath.Join(t.dir, id+".info"))
	return err == nil
}

// sweepOrphans deletes the partial files of uploads that are closed or
// unknown (a crash between closing an upload and deleting its files, or
// between tusd's two files), once no request of this process can be
// writing them: files last written before this process started (so a
// restart clears them at its first run), or an expiry period ago. An open
// upload's files always stay: its client may resume it, across restarts.
func (t *TUS) sweepOrphans(ctx context.Context) error {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("sweep tus uploads: %w", err)
	}
	before := t.svc.Now().Add(-t.svc.UploadExpiry())
	seen := map[string]bool{}
	for _, e := range entries {
		id, _, _ := strings.Cut(e.Name(), ".")
		if seen[id] || !validID(id) || t.busy(id) {
			continue
		}
		seen[id] = true
		fi, err := e.Info()
		if err != nil || (fi.ModTime().After(before) && !fi.ModTime().Before(t.started)) {
			continue
		}
		open, err := t.svc.uploadOpen(ctx, id)
		if err != nil {
			return fmt.Errorf("sweep tus uploads: %w", err)
		}
		if !open {
			t.removeFiles(id)
		}
	}
	return nil
}

func (t *TUS) expireOne(ctx context.Context, id string) error {
	// Polite: a request holding the upload (here or on another replica)
	// is not interrupted; it is not idle after all.
	lock := t.locker.newLock(id, true)
	lctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := lock.Lock(lctx, func() {}); err != nil {
		return nil // in use after all; the next run will see
	}
	defer func() { _ = lock.Unlock() }()
	if _, err := t.svc.AbortUpload(ctx, id, true); err != nil {
		return fmt.Errorf("expire upload %s: %w", id, err)
	}
	t.removeFiles(id)
	t.log.Info("expired an abandoned upload", "upload", id)
	return nil
}

// problem turns an error into the tusd error that answers it as RFC 9457
// problem+json, Retry-After included, like every other reel route.
func (t *TUS) problem(ctx context.Context, err error) error {
	p, e := httpx.ProblemOf(err)
	p.RequestID = obs.RequestFrom(ctx).ID
	if p.Status >= 500 {
		obs.Logger(ctx, t.log).Error("upload request failed", "err", err, "status", p.Status)
	}
	b, _ := json.Marshal(p)
	hdr := tusd.HTTPHeader{"Content-Type": "application/problem+json", "Cache-Control": "no-store"}
	if e.RetryAfter > 0 {
		hdr["Retry-After"] = strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
	} else if p.Status == http.StatusServiceUnavailable {
		hdr["Retry-After"] = "5"
	}
	return tusd.Error{ErrorCode: e.Code, Message: e.Msg, HTTPResponse: tusd.HTTPResponse{StatusCode: p.Status, Body: string(b), Header: hdr}}
}

// problems rewrites tusd's own plain-text errors ("ERR_UPLOAD_NOT_FOUND:
// upload not found") as problem documents. Errors from reel's hooks are
// problem documents already and pass as they are.
func problems(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pw := &problemWriter{ResponseWriter: w, r: r}
		next.ServeHTTP(pw, r)
		pw.finish()
	})
}

type problemWriter struct {
	http.ResponseWriter
	r       *http.Request
	status  int
	convert bool
	body    bytes.Buffer
}

func (p *problemWriter) WriteHeader(code int) {
	if p.status != 0 {
		return
	}
	p.status = code
	if code >= 400 && strings.HasPrefix(p.Header().Get("Content-Type"), "text/plain") {
		p.convert = true // held back until the text is in
		return
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.WriteHeader(http.StatusOK)
	}
	if p.convert {
		if p.body.Len() < 4096 {
			p.body.Write(b)
		}
		return len(b), nil
	}
	return p.ResponseWriter.Write(b)
}

func (p *problemWriter) finish() {
	if !p.convert {
		return
	}
	code, msg, ok := strings.Cut(strings.TrimSpace(p.body.String()), ": ")
	if !ok {
		code, msg = "ERR_UPLOAD", http.StatusText(p.status)
	}
	prob := httpx.Problem{
		Type: "about:blank", Title: http.StatusText(p.status), Status: p.status,
		Code: strings.ToLower(strings.TrimPrefix(code, "ERR_")), Detail: msg,
		RequestID: obs.RequestFrom(p.r.Context()).ID,
	}
	b, _ := json.Marshal(prob)
	hdr := p.Header()
	hdr.Set("Content-Type", "application/problem+json")
	hdr.Set("Content-Length", strconv.Itoa(len(b)))
	p.ResponseWriter.WriteHeader(p.status)
	if p.r.Method != http.MethodHead {
		_, _ = p.ResponseWriter.Write(b)
	}
}

// Unwrap lets http.ResponseController (which tusd uses for read
// deadlines) reach the underlying writer.
func (p *problemWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// finishSlack is added to the write deadlines tusd sets. tusd allows two
// network timeouts (2 min) after the last byte read to write the answer,
// but the PATCH that completes an upload answers only once the video is
// finalised (probe, poster, the copy into the blob store), which for a
// large file on S3 can take longer.
const finishSlack = 30 * time.Minute

// SetWriteDeadline is what http.ResponseController finds first: it passes
// tusd's write deadlines on with finishSlack added.
func (p *problemWriter) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() {
		t = t.Add(finishSlack)
	}
	return http.NewResponseController(p.ResponseWriter).SetWriteDeadline(t)
}

// tusLog passes tusd's log records (golang.org/x/exp/slog) on to reel's
// logger, warnings and errors only: tusd logs every request and chunk at
// info, which the access log already covers.
type tusLog struct{ h slog.Handler }

func (l tusLog) Enabled(ctx context.Context, lv xslog.Level) bool {
	return lv >= xslog.LevelWarn && l.h.Enabled(ctx, slog.Level(lv))
}

func (l tusLog) Handle(ctx context.Context, r xslog.Record) error {
	lv := slog.Level(r.Level)
	if r.Message == "BodyReadError" {
		// tusd logs a PATCH body cut short at error level, but a client
		// that goes away mid-chunk is what resumable uploads are for: the
		// bytes that arrived are kept and the client resumes from there.
		lv = slog.LevelInfo
		if !l.h.Enabled(ctx, lv) {
			return nil
		}
	}
	nr := slog.NewRecord(r.Time, lv, "tus: "+r.Message, r.PC)
	r.Attrs(func(a xslog.Attr) bool {
		nr.AddAttrs(slog.Any(a.Key, a.Value.Any()))
		return true
	})
	return l.h.Handle(ctx, nr)
}

func (l tusLog) WithAttrs(as []xslog.Attr) xslog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = slog.Any(a.Key, a.Value.Any())
	}
	return tusLog{h: l.h.WithAttrs(out)}
}

func (l tusLog) WithGroup(name string) xslog.Handler { return tusLog{h: l.h.WithGroup(name)} }
