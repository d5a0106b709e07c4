package httpx_test

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/reel-video/reel/internal/platform/errs"
	"github.com/reel-video/reel/internal/platform/httpx"
)

// fuzzBody has a field of every JSON type the routes decode.
type fuzzBody struct {
	Title *string  `json:"title"`
	N     int64    `json:"n"`
	OK    bool     `json:"ok"`
	Tags  []string `json:"tags"`
	Sub   struct {
		A float64 `json:"a"`
	} `json:"sub"`
	M map[string]int32 `json:"m"`
}

// fuzzMax is the body bound of the fuzzed decodes, small enough that the
// fuzzer crosses it.
const fuzzMax = 512

// FuzzDecode: whatever the body and Content-Type, Decode either fills
// the value or fails with a client error (400, 413 or 415) whose message
// holds no Go internals; what it accepts is one valid JSON value within
// the bound, which the lenient decoder reads the same way, and which
// survives a round trip through the encoder.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"title":"a","n":1,"ok":true,"tags":["x"],"sub":{"a":1.5},"m":{"k":2}}`,
		`{}`, `{"title":null}`, `{"n":"1"}`, `{"n":1e3}`, `{"n":9223372036854775808}`, `{"unknown":1}`,
		`{"sub":[]}`, `[]`, `null`, `1`, `{} {}`, `{}   `, `{"title":"\ud800"}`, `{"TITLE":"x"}`,
		`{"m":{"k":2147483648}}`, `{"tags":[1]}`, `{"title":"a"`, ``, ` `,
		`{"title":"` + strings.Repeat("x", fuzzMax) + `"}`,
	} {
		f.Add([]byte(s), "application/json")
	}
	for _, ct := range []string{"", "text/plain", "application/problem+json", "application/json; charset=utf-8", "application/json;;", "multipart/form-data; boundary=x"} {
		f.Add([]byte(`{"n":1}`), ct)
	}
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		var got fuzzBody
		err := decode(body, ct, &got)
		if err != nil {
			switch k := errs.KindOf(err); k {
			case errs.Invalid, errs.TooLarge, errs.Unsupported:
			default:
				t.Fatalf("Decode(%q, %q): kind %v (status %d): %v", body, ct, k, httpx.StatusOf(k), err)
			}
			// What the client reads is the problem's detail.
			p, _ := httpx.ProblemOf(err)
			if msg := p.Detail; strings.Contains(msg, "json: ") || strings.Contains(msg, "reflect") || strings.Contains(msg, "httpx_test") || strings.Contains(msg, "fuzzBody") {
				t.Fatalf("Decode(%q): internal text in %q", body, msg)
			}
			return
		}
		if ct != "" {
			mt, _, _ := mime.ParseMediaType(ct)
			if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
				t.Fatalf("accepted Content-Type %q", ct)
			}
		}
		if len(body) > fuzzMax {
			t.Fatalf("accepted %d bytes, over the bound %d", len(body), fuzzMax)
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		var lenient fuzzBody
		if err := json.Unmarshal(body, &lenient); err != nil || !reflect.DeepEqual(lenient, got) {
			t.Fatalf("%q: strict %+v, lenient %+v (%v)", body, got, lenient, err)
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back fuzzBody
		if len(again) <= fuzzMax {
			if err := decode(again, "application/json", &back); err != nil || !reflect.DeepEqual(back, got) {
				t.Fatalf("%q decoded to %+v, re-encoded as %s decodes to %+v, %v", body, got, again, back, err)
			}
		}
	})
}

func decode(body []byte, ct string, dst any) error {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	return httpx.Decode(httptest.NewRecorder(), r, dst, fuzzMax)
}
