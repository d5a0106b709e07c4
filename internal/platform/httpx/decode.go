package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/reel-video/reel/internal/platform/errs"
)

// DefaultMaxBody bounds JSON request bodies; no JSON route needs more.
const DefaultMaxBody = 64 << 10

// Errors returned by Decode.
var (
	ErrMalformedJSON = errs.New(errs.Invalid, "malformed_json", "the request body is not valid JSON")
	ErrBodyTooLarge  = errs.New(errs.TooLarge, "body_too_large", "the request body is too large")
	ErrContentType   = errs.New(errs.Unsupported, "unsupported_content_type", "the request body must be application/json")
	ErrInvalidField  = errs.New(errs.Invalid, "invalid_field", "a field has the wrong type or is unknown")
	ErrInvalidQuery  = errs.New(errs.Invalid, "invalid_query", "a query parameter is not valid")
)

// Decode reads exactly one JSON value from the body into dst, strictly:
// unknown fields, wrong types, trailing data and bodies over maxBytes are
// client errors with a clear message. maxBytes <= 0 means DefaultMaxBody.
func Decode(w http.ResponseWriter, r *http.Request, dst any, maxBytes int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return ErrContentType
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBody
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			if e := decodeError(err); errs.KindOf(e) == errs.TooLarge {
				return e
			}
		}
		return ErrMalformedJSON.WithMsg("the request body must hold a single JSON value")
	}
	return nil
}

func decodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
		maxErr  *http.MaxBytesError
	)
	switch {
	case errors.Is(err, ErrSlowBody):
		return ErrSlowBody
	case errors.As(err, &maxErr):
		return ErrBodyTooLarge.WithMsg(fmt.Sprintf("the request body must not exceed %d bytes", maxErr.Limit))
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrMalformedJSON
	case errors.Is(err, io.EOF):
		return ErrMalformedJSON.WithMsg("the request body is empty")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return ErrMalformedJSON.WithMsg("the request body must be a JSON object")
		}
		return ErrInvalidField.WithMsg(fmt.Sprintf("field %q must be of type %s", field, jsonType(typeErr.Type.Kind().String())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return ErrInvalidField.WithMsg("unknown field " + name)
	default:
		return ErrMalformedJSON
	}
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "array"
	case "ptr":
		return "value"
	default:
		return "number"
	}
}
