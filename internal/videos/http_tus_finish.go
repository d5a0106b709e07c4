package videos

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/filestore"
	tusd "github.com/tus/tusd/v2/pkg/handler"
)

// Resumable uploads whose bytes have all arrived but whose finalisation did
// not end: the process died between the last byte and the ready
// transaction, or a failure could not close the upload. tusd runs the
// finish hook once, on the PATCH that writes the last byte, and answers
// any later PATCH of a complete upload without it; so reel takes such an
// upload up again itself, as the user expects (the bytes arrived, the
// video should appear):
//
//   - at start, and with each expiry pass, every complete upload of the
//     tus directory that is still open (Expire);
//   - every lease, the open uploads whose finalisation row lapsed (Finish);
//   - when its client asks again: a HEAD, or a PATCH at the final offset,
//     finalises it and is answered as the last PATCH would have been.
//
// Each runs under the upload's lock, as a PATCH does. The upload's own
// file keeps the bytes until the video is ready: finalising consumes a
// second name of it (finalLink).

// finalSuffix names the second name of a complete upload's bytes, which
// finalising consumes (a disk blob store takes it by a rename).
const finalSuffix = ".final"

// complete finalises upload id from its bytes at path (tusd's file), and
// deletes its files unless the upload stays open for another attempt.
func (t *TUS) complete(ctx context.Context, id, path string, size int64) (Video, error) {
	src := path
	link := filepath.Join(t.dir, id+finalSuffix)
	_ = os.Remove(link) // a dead attempt's
	if err := os.Link(path, link); err == nil {
		src = link
		defer func() { _ = os.Remove(link) }()
	} else {
		// The bytes may be consumed then, and a crash mid-way loses them:
		// the upload stays open until it expires.
		t.log.Warn("link a complete upload for finalising", "upload", id, "err", err)
	}
	v, err := t.svc.CompleteUpload(ctx, id, src, size)
	if err == nil || !t.stillOpen(ctx, id) {
		t.removeFiles(id)
	}
	return v, err
}

// stillOpen reports whether the upload is open, or cannot be told.
func (t *TUS) stillOpen(ctx context.Context, id string) bool {
	open, err := t.svc.uploadOpen(context.WithoutCancel(ctx), id)
	return err != nil || open
}

// finish takes up upload id if it is open and all its bytes are in this
// replica's directory, under its lock (waiting at most wait, politely).
// done is false when there was nothing to finish here, or the lock was
// busy: a request is at work on it.
func (t *TUS) finish(ctx context.Context, id string, wait time.Duration) (v Video, done bool, err error) {
	if !validID(id) {
		return Video{}, false, nil
	}
	if _, ok := t.completeHere(ctx, id); !ok {
		return Video{}, false, nil
	}
	lock := t.locker.newLock(id, true)
	lctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if lock.Lock(lctx, func() {}) != nil {
		return Video{}, false, nil
	}
	defer func() { _ = lock.Unlock() }()
	// Again under the lock: what was read before it may have changed.
	info, ok := t.completeHere(ctx, id)
	if !ok {
		return Video{}, false, nil
	}
	if open, err := t.svc.uploadOpen(ctx, id); err != nil || !open {
		return Video{}, false, err
	}
	path := info.Storage[filestore.StorageKeyPath]
	if path == "" {
		path = filepath.Join(t.dir, id)
	}
	t.enter(id)
	defer t.leave(id)
	v, err = t.complete(ctx, id, path, info.Size)
	return v, true, err
}

// completeHere returns upload id's tusd info if all its bytes are in this
// replica's directory.
func (t *TUS) completeHere(ctx context.Context, id string) (tusd.FileInfo, bool) {
	up, err := t.store.GetUpload(ctx, id)
	if err != nil {
		return tusd.FileInfo{}, false
	}
	info, err := up.GetInfo(ctx)
	if err != nil || info.SizeIsDeferred || info.Offset != info.Size {
		return tusd.FileInfo{}, false
	}
	return info, true
}

// Finish takes up the open uploads whose finalisation died (their row's
// lease lapsed) and whose bytes this replica has. Run it every lease.
func (t *TUS) Finish(ctx context.Context) error {
	ids, err := t.svc.FinishingUploads(ctx)
	if err != nil {
		return err
	}
	t.finishAll(ctx, ids)
	return nil
}

// FinishEvery is how often Finish should run: the finalisation's lease.
func (t *TUS) FinishEvery() time.Duration { return t.svc.maintainEvery() }

// finishComplete takes up every open upload of the directory whose bytes
// have all arrived (Expire's first step).
func (t *TUS) finishComplete(ctx context.Context) error {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".info"); ok {
			ids = append(ids, id)
		}
	}
	t.finishAll(ctx, ids)
	return nil
}

func (t *TUS) finishAll(ctx context.Context, ids []string) {
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if t.busy(id) || !t.holds(id) {
			continue
		}
		v, done, err := t.finish(ctx, id, time.Second)
		switch {
		case errors.Is(err, ErrUploadFinalising):
			// Its row's lease has not lapsed yet: a later pass.
		case err != nil:
			t.log.Warn("finish an interrupted upload", "upload", id, "err", err)
		case done:
			t.log.Info("finished an upload whose finalisation was interrupted", "upload", id, "video", v.ID)
		}
	}
}

// answerDone answers a HEAD, or a PATCH at the final offset, of an upload
// that made video videoID.
func answerDone(w http.ResponseWriter, method string, size int64, videoID string) {
	hdr := w.Header()
	hdr.Set("Tus-Resumable", "1.0.0")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Upload-Offset", strconv.FormatInt(size, 10))
	hdr.Set(VideoIDHeader, videoID)
	if method == http.MethodHead {
		hdr.Set("Upload-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
