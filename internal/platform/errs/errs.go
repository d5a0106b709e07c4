// Package errs defines the error kinds that business logic returns. Services
// declare sentinel errors with a Kind and a stable machine-readable code; the
// HTTP layer maps the Kind to a status in exactly one place (httpx), so no
// service package needs to know about HTTP.
package errs

import (
	"errors"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds of errors. Internal is the zero value so that an unclassified
// error never leaks as a client mistake.
const (
	Internal        Kind = iota // a bug or an unexpected failure; details stay in the log
	Invalid                     // malformed input (400)
	Unauthenticated             // missing or bad credentials (401)
	Forbidden                   // authenticated but not allowed (403)
	NotFound                    // no such object, or not the caller's (404)
	Conflict                    // state conflict, e.g. a duplicate (409)
	TooLarge                    // body too large or storage quota exceeded (413)
	Unsupported                 // unsupported media (415)
	Validation                  // well-formed but invalid values (422)
	RateLimited                 // throttled or a daily limit reached (429)
	Unavailable                 // a dependency is down (503)
	Timeout                     // the client sent its request too slowly (408)
)

// Error is a classified error whose Msg is safe to show to a client.
type Error struct {
	Kind Kind
	// Code is a stable, machine-readable word such as "email_taken".
	Code string
	// Msg is a human-readable sentence that may be shown to clients.
	Msg string
	// RetryAfter, when positive, tells the client when to try again.
	RetryAfter time.Duration
	// Fields names the offending input fields for validation errors.
	Fields map[string]string
}

// New returns a sentinel error.
func New(kind Kind, code, msg string) *Error {
	return &Error{Kind: kind, Code: code, Msg: msg}
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// Is makes copies made by WithRetryAfter or WithFields match their sentinel.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Kind == e.Kind
}

// WithRetryAfter returns a copy of e that carries a retry delay.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	return &c
}

// WithMsg returns a copy of e with a more specific client-safe message.
func (e *Error) WithMsg(msg string) *Error {
	c := *e
	c.Msg = msg
	return &c
}

// WithFields returns a copy of e that names the offending fields.
func (e *Error) WithFields(fields map[string]string) *Error {
	c := *e
	c.Fields = fields
	return &c
}

// As finds the classified error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// KindOf returns the kind of err, Internal when it is not classified.
func KindOf(err error) Kind {
	if e, ok := As(err); ok {
		return e.Kind
	}
	return Internal
}

// Common errors shared by several services.
var (
	ErrUnauthenticated = New(Unauthenticated, "unauthenticated", "a valid access token is required")
	ErrForbidden       = New(Forbidden, "forbidden", "you are not allowed to do this")
	ErrNotFound        = New(NotFound, "not_found", "not found")
	ErrUnavailable     = New(Unavailable, "unavailable", "a dependency is unavailable, try again shortly")
	ErrBadCursor       = New(Invalid, "invalid_cursor", "the cursor is not valid")
)
