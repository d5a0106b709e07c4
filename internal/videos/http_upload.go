package videos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
	"github.com/reel-video/reel/internal/platform/probe"
)

// spoolBuf is the copy buffer of an arriving upload: large enough that a
// gigabyte takes few syscalls, small enough that many concurrent uploads
// keep memory flat.
const spoolBuf = 256 << 10

// Field size limits while reading the form, in bytes: a character is at
// most 4 bytes of UTF-8; the service checks the character counts.
const (
	maxTitleBytes       = 4*MaxTitle + 64
	maxDescriptionBytes = 4*MaxDescription + 64
)

// ErrUploadContentType refuses a body that is not multipart/form-data.
var ErrUploadContentType = httpx.ErrContentType.WithMsg("the upload must be multipart/form-data with a video part and a title field")

// upload is POST /api/v1/videos: a multipart upload read as a stream. The
// caller is authenticated (by the middleware) and the declared length
// admitted against the quota and the daily limit before a byte of the body
// is read; the video part goes to a spool file, never into memory.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return refuse(w, ErrUploadContentType)
	}
	boundary := params["boundary"]
	if boundary == "" {
		return refuse(w, ErrMalformedUpload.WithMsg("the multipart/form-data content type has no boundary"))
	}
	if r.ContentLength < 0 {
		// Admission needs the size up front; a chunked body has none.
		closeAfter(w)
		httpx.WriteProblem(w, httpx.Problem{
			Type: "about:blank", Title: http.StatusText(http.StatusLengthRequired), Status: http.StatusLengthRequired,
			Code: "length_required", Detail: "send a Content-Length: the upload is admitted by its declared size",
		})
		return nil
	}
	if r.ContentLength > h.svc.cfg.MaxUploadSize {
		return refuse(w, ErrUploadTooLarge.WithMsg(fmt.Sprintf("the upload is %d bytes; the largest allowed is %d bytes", r.ContentLength, h.svc.cfg.MaxUploadSize)))
	}
	adm, err := h.svc.Admit(ctx, caller(r).UserID, r.ContentLength, 0)
	if err != nil {
		return refuse(w, err)
	}
	in, err := h.receive(r, boundary)
	if err != nil {
		h.svc.Release(ctx, adm)
		return refuse(w, err)
	}
	defer func() { _ = os.Remove(in.Path) }()
	v, err := h.svc.Finalise(ctx, adm, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/videos/"+v.ID)
	httpx.JSON(w, http.StatusCreated, videoBody{v})
	return nil
}

// refuse answers err and closes the connection afterwards, because the
// rest of the body may be unread and not worth draining.
func refuse(w http.ResponseWriter, err error) error {
	closeAfter(w)
	return err
}

func closeAfter(w http.ResponseWriter) { w.Header().Set("Connection", "close") }

// bodyReader remembers whether the request body failed (the client went
// away, the connection broke), to tell a cut-off upload from a malformed
// one.
type bodyReader struct {
	r   io.Reader
	n   int64
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// receive reads the multipart body: title and description fields (before
// or after the file), and the video part spooled to a file. It returns an
// Ingest whose file the caller removes; on error nothing is left behind.
func (h *Handler) receive(r *http.Request, boundary string) (in Ingest, err error) {
	body := &bodyReader{r: r.Body}
	// mime/multipart reads through a 4 KiB buffer; a large one in front
	// of it makes the socket reads large (a tenth of the syscalls).
	mr := multipart.NewReader(bufio.NewReaderSize(body, spoolBuf), boundary)
	var spool *os.File
	defer func() {
		if spool != nil {
			_ = spool.Close()
			if err != nil {
				_ = os.Remove(spool.Name())
			}
		}
		if err != nil {
			err = classify(err, body, r.ContentLength)
		}
	}()
	var titleSeen bool
	for {
		part, perr := mr.NextPart()
		if perr == io.EOF {
			break
		}
		if perr != nil {
			return Ingest{}, fmt.Errorf("%w: %w", ErrMalformedUpload, perr)
		}
		switch part.FormName() {
		case "title":
			titleSeen = true
			if in.Meta.Title, err = readField(part, "title", maxTitleBytes); err != nil {
				return Ingest{}, err
			}
		case "description":
			if in.Meta.Description, err = readField(part, "description", maxDescriptionBytes); err != nil {
				return Ingest{}, err
			}
		case "video":
			if spool != nil {
				return Ingest{}, ErrMalformedUpload.WithMsg("send exactly one video part")
			}
			in.Meta.Filename = part.FileName()
			if spool, err = h.svc.Spool(); err != nil {
				return Ingest{}, err
			}
			if in.Size, err = spoolVideo(spool, part, h.svc.cfg.MaxUploadSize); err != nil {
				return Ingest{}, err
			}
		default:
			// Unknown parts are skipped, not refused: clients add
			// fields of their own. The body's declared length bounds
			// them.
			if _, err = io.Copy(io.Discard, part); err != nil {
				return Ingest{}, fmt.Errorf("%w: %w", ErrMalformedUpload, err)
			}
		}
		_ = part.Close()
	}
	fields := map[string]string{}
	if spool == nil {
		fields["video"] = "is required"
	}
	if !titleSeen {
		fields["title"] = "is required"
	}
	if len(fields) > 0 {
		return Ingest{}, ErrValidation.WithFields(fields)
	}
	// No fsync: the spool file is scratch space. If the machine dies now
	// the upload fails anyway; the blob store makes the stored copy
	// durable.
	in.Path, in.Via = spool.Name(), "multipart"
	return in, nil
}

// classify turns a failed read into what the client should hear: a body
// that broke off is upload_incomplete, a well-delivered body that is not
// valid multipart is malformed_upload; classified errors pass unchanged.
func classify(err error, body *bodyReader, declared int64) error {
	if body.err != nil || (declared >= 0 && body.n < declared && errors.Is(err, io.ErrUnexpectedEOF)) {
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	if _, ok := errs.As(err); ok {
		return err
	}
	return fmt.Errorf("%w: %w", ErrMalformedUpload, err)
}

func readField(part *multipart.Part, name string, limit int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return "", ErrValidation.WithFields(map[string]string{name: "is too long"})
	}
	return string(b), nil
}

// spoolVideo copies the video part to f. It sniffs the first bytes before
// anything else, so a file that is not a video is refused (415) without
// reading the rest of a possibly huge body.
func spoolVideo(f *os.File, part io.Reader, limit int64) (int64, error) {
	head := make([]byte, probe.SniffLen)
	n, err := io.ReadFull(part, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, fmt.Errorf("read video: %w", err)
	}
	if err == io.ErrUnexpectedEOF {
		// A short file, or a body cut off inside its first KiB: the
		// caller's classify tells which; sniff what there is.
		err = nil
	}
	if _, serr := probe.Sniff(head[:n]); serr != nil {
		return 0, notVideo(serr)
	}
	if _, err := f.Write(head[:n]); err != nil {
		return 0, fmt.Errorf("spool upload: %w", err)
	}
	size := int64(n)
	buf := make([]byte, spoolBuf)
	for {
		// A part hands out at most a few KiB per Read; filling the
		// buffer first makes each write to the file large. (Not
		// io.ReadFull: it would blur the part's clean io.EOF with
		// io.ErrUnexpectedEOF, which is how a truncated part ends.)
		m := 0
		var err error
		for m < len(buf) && err == nil {
			var k int
			k, err = part.Read(buf[m:])
			m += k
		}
		if m > 0 {
			if size += int64(m); size > limit {
				// The declared Content-Length already bounds the
				// body; this is a guard, never cut silently.
				return size, ErrUploadTooLarge
			}
			if _, werr := f.Write(buf[:m]); werr != nil {
				return size, fmt.Errorf("spool upload: %w", werr)
			}
		}
		switch err {
		case nil:
		case io.EOF:
			return size, nil
		default:
			return size, fmt.Errorf("read video: %w", err)
		}
	}
}

// writerOnly hides a writer's ReadFrom so io.Copy uses the plain Write
// path.
type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }
