package loadtest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/textproto"
	"net/url"
)

// payload is a request body that can be sent again: a fixed-size body the
// transport streams, or nil.
type payload struct {
	open  func() io.Reader
	size  int64
	ctype string
}

func jsonBody(v any) *payload {
	b, _ := json.Marshal(v)
	return &payload{open: func() io.Reader { return bytes.NewReader(b) }, size: int64(len(b)), ctype: "application/json"}
}

// formBody is a form as a browser posts it.
func formBody(v url.Values) *payload {
	b := []byte(v.Encode())
	return &payload{open: func() io.Reader { return bytes.NewReader(b) }, size: int64(len(b)), ctype: "application/x-www-form-urlencoded"}
}

// multipartBody builds the upload form: the title first (a streaming
// server needs it before the file), then the video part, without copying
// the video.
func multipartBody(title string, video []byte) *payload {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	_ = mw.WriteField("title", title)
	ph := textproto.MIMEHeader{}
	ph.Set("Content-Disposition", `form-data; name="video"; filename="loadtest.mp4"`)
	ph.Set("Content-Type", "video/mp4")
	_, _ = mw.CreatePart(ph)
	n := head.Len()
	_ = mw.Close()
	all := head.Bytes()
	prefix, suffix := all[:n:n], all[n:]
	return &payload{
		open: func() io.Reader {
			return io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(video), bytes.NewReader(suffix))
		},
		size:  int64(len(prefix) + len(video) + len(suffix)),
		ctype: mw.FormDataContentType(),
	}
}

type videoInfo struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// videoFrom reads a video from `{"video":{…}}` or a bare video object.
func videoFrom(b []byte) videoInfo {
	var wrapped struct {
		Video videoInfo `json:"video"`
	}
	if json.Unmarshal(b, &wrapped) == nil && wrapped.Video.ID != "" {
		return wrapped.Video
	}
	var v videoInfo
	_ = json.Unmarshal(b, &v)
	return v
}

// readyIDs appends the ids of the ready videos of a feed page to dst.
func readyIDs(b []byte, dst []string) []string {
	var page struct {
		Items []videoInfo `json:"items"`
	}
	if json.Unmarshal(b, &page) != nil {
		return dst
	}
	for _, v := range page.Items {
		if v.ID != "" && (v.Status == "ready" || v.Status == "") {
			dst = append(dst, v.ID)
		}
	}
	return dst
}
