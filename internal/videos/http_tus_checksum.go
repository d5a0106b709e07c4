package videos

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // the tus checksum extension names sha1; it checks transfer integrity, not authenticity
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/obs"
)

// The tus checksum extension (decision 0015): tusd has none, so reel's tus
// layer verifies a PATCH's Upload-Checksum itself, before tusd sees the
// chunk. The chunk is read into a spool file while it is hashed (bounded by
// what the upload still lacks); only when the digest matches does tusd get
// the file as the request's body and append it. A mismatch is 460 and the
// upload's offset does not move, so the client sends the chunk again.

// ChecksumAlgorithms are the algorithms the checksum extension accepts,
// as advertised in Tus-Checksum-Algorithm.
const ChecksumAlgorithms = "sha1,sha256"

// StatusChecksumMismatch is tus's 460 Checksum Mismatch.
const StatusChecksumMismatch = 460

// Errors of the checksum extension.
var (
	ErrChecksumAlgorithm = errs.New(errs.Invalid, "checksum_algorithm_unsupported",
		"Upload-Checksum must name one of the algorithms in Tus-Checksum-Algorithm ("+ChecksumAlgorithms+")")
	ErrChecksumMalformed = errs.New(errs.Invalid, "invalid_checksum", "Upload-Checksum must be an algorithm and a base64 digest of its length, separated by a space")
	// ErrChecksumMismatch is answered 460 (checksumProblem).
	ErrChecksumMismatch = errs.New(errs.Invalid, "checksum_mismatch", "the chunk does not match its Upload-Checksum; nothing was kept, send it again")
	// ErrChunkTooLarge refuses a PATCH body longer than its upload.
	ErrChunkTooLarge = errs.New(errs.TooLarge, "chunk_too_large", "the chunk is longer than the upload")
)

// parseChecksum reads an Upload-Checksum header: the hash to compute and
// the digest expected.
func parseChecksum(h string) (hash.Hash, []byte, error) {
	alg, enc, ok := strings.Cut(strings.TrimSpace(h), " ")
	var sum hash.Hash
	switch alg {
	case "sha1":
		sum = sha1.New() //nolint:gosec // see the import
	case "sha256":
		sum = sha256.New()
	default:
		if !ok {
			return nil, nil, ErrChecksumMalformed
		}
		return nil, nil, ErrChecksumAlgorithm
	}
	want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if !ok || err != nil || len(want) != sum.Size() {
		return nil, nil, ErrChecksumMalformed
	}
	return sum, want, nil
}

// verifyChunk reads a PATCH body with an Upload-Checksum into a spool
// file, at most limit bytes (the upload's length: tusd refuses a chunk
// past it), and checks its digest. On a match it makes the file the request's body
// and returns a func that removes it once tusd is done; a body that is
// longer than limit is handed on as it is (tusd answers it).
func (t *TUS) verifyChunk(r *http.Request, limit int64) (done func(), err error) {
	sum, want, err := parseChecksum(r.Header.Get("Upload-Checksum"))
	if err != nil {
		return nil, err
	}
	if r.ContentLength > limit {
		return func() {}, nil // tusd refuses it before reading
	}
	f, err := t.svc.spoolFile()
	if err != nil {
		return nil, err
	}
	remove := func() { _ = f.Close(); _ = os.Remove(f.Name()) }
	n, err := io.Copy(io.MultiWriter(f, sum), io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		remove()
		if _, ok := errs.As(err); ok {
			return nil, err // a body too slow (408)
		}
		return nil, fmt.Errorf("%w: %w", ErrIncomplete, err)
	case n > limit:
		remove()
		return nil, ErrChunkTooLarge
	case !bytes.Equal(sum.Sum(nil), want):
		remove()
		return nil, ErrChecksumMismatch
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		remove()
		return nil, err
	}
	r.Body, r.ContentLength = f, n
	r.Header.Del("Transfer-Encoding")
	return remove, nil
}

// checksumOptions adds the checksum extension to tusd's discovery answer.
type checksumOptions struct{ http.ResponseWriter }

func (w checksumOptions) WriteHeader(code int) {
	h := w.Header()
	if ext := h.Get("Tus-Extension"); ext != "" {
		h.Set("Tus-Extension", ext+",checksum")
		h.Set("Tus-Checksum-Algorithm", ChecksumAlgorithms)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w checksumOptions) Write(b []byte) (int, error) { return w.ResponseWriter.Write(b) }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w checksumOptions) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checksumProblem answers a checksum error: a mismatch with tus's 460,
// anything else as every reel error.
func checksumProblem(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, ErrChecksumMismatch) {
		httpx.Error(w, r, err)
		return
	}
	p, _ := httpx.ProblemOf(err)
	p.Status, p.Title = StatusChecksumMismatch, "Checksum Mismatch"
	p.RequestID = obs.RequestFrom(r.Context()).ID
	w.Header().Set("Tus-Resumable", "1.0.0")
	httpx.WriteProblem(w, p)
}
