package videos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"os"
	"time"

	"github.com/reel-video/reel/internal/media"
	"github.com/reel-video/reel/internal/platform/errs"
)

// Refusals of a multipart upload that its routes answer each in their own
// words (the compatibility surface quotes the original system's messages).
var (
	ErrUploadContentType = errs.New(errs.Unsupported, "unsupported_content_type", "the upload must be multipart/form-data with a video part and a title field")
	// ErrLengthRequired refuses a body without a declared length (a
	// chunked one): admission reserves the declared size up front.
	ErrLengthRequired = errs.New(errs.Invalid, "length_required", "send a Content-Length: the upload is admitted by its declared size")
	// ErrMissingVideo and ErrMissingTitle are joined to the ErrValidation
	// of a form without a video part or without a title (absent or
	// blank), so a caller can tell which without reading its fields.
	ErrMissingVideo = errors.New("the upload has no video part")
	ErrMissingTitle = errors.New("the upload has no title")
)

// Bounds of a form, in bytes and parts. A character is at most 4 bytes
// of UTF-8: Meta.Validate checks the character counts. Parts other than
// the video are read into memory or skipped, so they are kept small.
const (
	maxTitleBytes       = 4*MaxTitle + 64
	maxDescriptionBytes = 4*MaxDescription + 64
	maxOtherPartBytes   = 64 << 10
	maxFormParts        = 32
)

// spoolBuf is the read buffer of an arriving upload and the size of its
// writes to the spool: large enough that a gigabyte takes few syscalls,
// small enough that many concurrent uploads keep memory flat.
const spoolBuf = 256 << 10

// Form is a multipart/form-data upload as its route hands it over: the
// request's Content-Type (with its boundary), its declared length and its
// body, read once as a stream.
type Form struct {
	ContentType string
	// Length is the declared length (Content-Length), -1 when unknown.
	Length int64
	Body   io.Reader
	// Via names the route, for the activity log ("multipart", "compat").
	Via string
}

// UploadForm is the one way a multipart upload comes in, whichever route
// it arrives on. It admits the declared length against the owner's
// storage quota and daily upload limit before reading a byte of the body,
// reads the form as a stream (a title and an optional description field,
// before or after one video part; other fields skipped), refuses a file
// that does not sniff as a video from its first KiB without reading the
// rest, spools the video part to a file, and finalises it into a ready
// video. On any refusal it gives everything back and leaves no file.
//
// Refusals, besides those of admission (quota_exceeded, daily_limit_reached,
// upload_too_large, unavailable) and of finalising:
//   - ErrUploadContentType: not multipart/form-data;
//   - ErrLengthRequired: no declared length;
//   - ErrIncomplete: the body broke off before its declared length;
//   - ErrMalformedUpload: a body delivered whole that is not a valid form,
//     or exceeds the form's bounds (parts, size of fields);
//   - ErrNotVideo: the video part is not a video;
//   - ErrValidation: missing or invalid fields, joined with ErrMissingVideo
//     or ErrMissingTitle when those are what is missing.
//
// The spool file is not fsynced: it is scratch space until finalising
// hands it to the blob store, which makes the stored copy durable itself
// (the disk store fsyncs before its rename; S3 keeps what it has
// acknowledged). A crash before that loses an upload that was never
// answered, which the client sends again; a sync here would only make
// every upload wait for its bytes to reach the disk twice.
func (s *Service) UploadForm(ctx context.Context, ownerID string, f Form) (Video, error) {
	boundary, err := formBoundary(f.ContentType)
	if err != nil {
		return Video{}, err
	}
	if f.Length < 0 {
		return Video{}, ErrLengthRequired
	}
	adm, err := s.admit(ctx, ownerID, f.Length, 0)
	if err != nil {
		return Video{}, err
	}
	defer adm.done()
	in, err := s.receive(f.Body, boundary, f.Length)
	if err != nil {
		s.releaseAdmission(ctx, adm)
		return Video{}, err
	}
	defer func() { _ = os.Remove(in.Path) }()
	in.Via = f.Via
	return s.finalise(ctx, adm, in)
}

func formBoundary(contentType string) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "multipart/form-data" {
		return "", ErrUploadContentType
	}
	if params["boundary"] == "" {
		return "", ErrMalformedUpload.WithMsg("the multipart/form-data content type has no boundary")
	}
	return params["boundary"], nil
}

// bodyReader remembers whether the body failed (the client went away, the
// connection broke), to tell a cut-off upload from a malformed one.
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

// receive reads a form of declared bytes from body, spooling its video
// part. It returns what arrived, whose file the caller removes; on error
// nothing is left behind.
func (s *Service) receive(body io.Reader, boundary string, declared int64) (in arrived, err error) {
	br := &bodyReader{r: body}
	// Nothing past the declared length is read: what was admitted bounds
	// the body. mime/multipart reads through a 4 KiB buffer; a large one
	// in front of it makes the socket reads large and few.
	mr := multipart.NewReader(bufio.NewReaderSize(io.LimitReader(br, declared), spoolBuf), boundary)
	var spool *os.File
	defer func() {
		if spool != nil {
			_ = spool.Close()
			if err != nil {
				_ = os.Remove(spool.Name())
			}
		}
		if err != nil {
			err = classify(err, br, declared)
		}
	}()
	for parts := 0; ; parts++ {
		part, perr := mr.NextPart()
		if perr == io.EOF {
			break
		}
		if perr != nil {
			return arrived{}, fmt.Errorf("%w: %w", ErrMalformedUpload, perr)
		}
		if parts == maxFormParts {
			return arrived{}, ErrMalformedUpload.WithMsg(fmt.Sprintf("the form has more than %d parts", maxFormParts))
		}
		switch part.FormName() {
		case "title":
			if in.Meta.Title, err = readField(part, "title", maxTitleBytes); err != nil {
				return arrived{}, err
			}
		case "description":
			if in.Meta.Description, err = readField(part, "description", maxDescriptionBytes); err != nil {
				return arrived{}, err
			}
		case "video":
			if spool != nil {
				return arrived{}, ErrMalformedUpload.WithMsg("send exactly one video part")
			}
			in.Meta.Filename = part.FileName()
			if spool, err = s.spoolFile(); err != nil {
				return arrived{}, err
			}
			if in.Size, err = spoolVideo(spool, part, declared); err != nil {
				return arrived{}, err
			}
		default:
			// Unknown fields are skipped, not refused: clients add
			// fields of their own.
			n, err := io.Copy(io.Discard, io.LimitReader(part, maxOtherPartBytes+1))
			if err != nil {
				return arrived{}, fmt.Errorf("skip a form field: %w", err)
			}
			if n > maxOtherPartBytes {
				return arrived{}, ErrMalformedUpload.WithMsg(fmt.Sprintf("a form field other than the video may hold at most %d bytes", maxOtherPartBytes))
			}
		}
		_ = part.Close()
	}
	if err := checkForm(spool != nil, in.Meta); err != nil {
		return arrived{}, err
	}
	in.Path = spool.Name()
	return in, nil
}

// checkForm refuses a form without a video part or with invalid fields,
// naming every offending field at once.
func checkForm(hasVideo bool, m Meta) error {
	fields := map[string]string{}
	var missing []error
	if !hasVideo {
		fields["video"] = "is required"
		missing = append(missing, ErrMissingVideo)
	}
	m, err := m.Validate()
	if e, ok := errs.As(err); ok {
		maps.Copy(fields, e.Fields)
	}
	if m.Title == "" {
		missing = append(missing, ErrMissingTitle)
	}
	if len(fields) == 0 {
		return nil
	}
	return errors.Join(append([]error{ErrValidation.WithFields(fields)}, missing...)...)
}

// classify turns a failed read into what the client should hear: a body
// that broke off is upload_incomplete (whatever the form looked like up
// to there), a body delivered whole that is not a valid form is
// malformed_upload; other classified errors pass unchanged.
func classify(err error, body *bodyReader, declared int64) error {
	if body.err != nil || (body.n < declared && errors.Is(err, io.ErrUnexpectedEOF)) {
		return fmt.Errorf("%w: %v", ErrIncomplete, err)
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
	head := make([]byte, media.SniffLen)
	n, err := io.ReadFull(part, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, fmt.Errorf("read video: %w", err)
	}
	// A short read is a short file, or a body cut off inside its first
	// KiB (which classify tells apart): sniff what there is.
	if _, serr := media.Sniff(head[:n]); serr != nil {
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
				// The declared length bounds the body already; this is
				// a guard, never a silent cut.
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

// spoolFile creates a file for an arriving upload in the spool directory;
// the caller removes it.
func (s *Service) spoolFile() (*os.File, error) {
	f, err := os.CreateTemp(s.cfg.SpoolDir, "upload-*")
	if err != nil {
		return nil, fmt.Errorf("spool upload: %w", err)
	}
	return f, nil
}

// admission is what an upload holds once admitted: a storage reservation
// and a daily-upload reservation of its declared size.
type admission struct {
	OwnerID string
	Bytes   int64
	quotaID string
	limitID string
	// settled records which reservations were committed, so a clean-up
	// releases only the others.
	quotaCommitted, limitCommitted bool
	// endLease stops renewing the reservations of an upload received by
	// this process (nil for a resumable upload's: see Config.ReserveLease).
	endLease func()
}

// done stops renewing the admission's reservations, if they are leased.
func (a *admission) done() {
	if a != nil && a.endLease != nil {
		a.endLease()
	}
}

// resumeAdmission rebuilds the admission of a resumable upload from the
// reservation ids it stored.
func resumeAdmission(ownerID string, bytes int64, quotaID, limitID string) *admission {
	return &admission{OwnerID: ownerID, Bytes: bytes, quotaID: quotaID, limitID: limitID}
}

// admit reserves bytes against the owner's storage quota and daily upload
// limit before any byte is accepted. Both reservations are atomic in their
// services, so concurrent uploads cannot overshoot. ttl <= 0 leases them
// to this process (lease.go) until admission.done; a positive ttl holds
// them for that long (a resumable upload's, which outlive the process).
func (s *Service) admit(ctx context.Context, ownerID string, bytes int64, ttl time.Duration) (*admission, error) {
	if bytes < 0 {
		return nil, ErrValidation.WithMsg("the upload's length must not be negative")
	}
	if bytes > s.cfg.MaxUploadSize {
		return nil, ErrUploadTooLarge.WithMsg(fmt.Sprintf("the upload is %d bytes; the largest allowed is %d bytes", bytes, s.cfg.MaxUploadSize))
	}
	leased := ttl <= 0
	if leased {
		ttl = s.cfg.ReserveLease
	}
	q, err := s.quota.Reserve(ctx, ownerID, bytes, ttl)
	if err != nil {
		// An answer lost may have left the hold made (Quota.Reserve).
		s.releaseAdmission(ctx, &admission{quotaID: q.ID})
		return nil, fmt.Errorf("admit upload: storage quota: %w", err)
	}
	l, err := s.limit.ReserveUpload(ctx, ownerID, bytes, ttl)
	if err != nil {
		// Give the storage reservation back, and the daily one if its
		// answer was lost.
		s.releaseAdmission(ctx, &admission{quotaID: q.ID, limitID: l.ID})
		return nil, fmt.Errorf("admit upload: daily upload limit: %w", err)
	}
	a := &admission{OwnerID: ownerID, Bytes: bytes, quotaID: q.ID, limitID: l.ID}
	if leased {
		a.endLease = s.keepAlive(leaseHold{q.ID, s.quota.Renew}, leaseHold{l.ID, s.limit.RenewUpload})
	}
	return a, nil
}

// releaseAdmission gives back what the admission still holds. A release
// that fails (the service is down) is retried in the background for a
// while (cleanUp); a reservation nobody releases lapses when its TTL ends.
func (s *Service) releaseAdmission(ctx context.Context, a *admission) {
	if a == nil {
		return
	}
	a.done()
	ctx, cancel := detached(ctx)
	defer cancel()
	if !a.quotaCommitted {
		s.release(ctx, "release storage reservation", a.quotaID, s.quota.Release)
	}
	if !a.limitCommitted {
		s.release(ctx, "release upload reservation", a.limitID, s.limit.ReleaseUpload)
	}
}

// release gives reservation id back with fn, now or else in the
// background (cleanUp).
func (s *Service) release(ctx context.Context, what, id string, fn func(context.Context, string) error) {
	if id == "" {
		return
	}
	s.cleanUp(ctx, what, []any{"reservation", id}, func(ctx context.Context) error { return fn(ctx, id) })
}
