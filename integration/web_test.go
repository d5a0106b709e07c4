package integration

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browserAgent is the user agent of the page client, so its events can be
// told from the API client's.
const browserAgent = "integration-browser/1"

// pages is a client of the web app with a cookie jar, sending what a
// browser sends on its own pages' form posts.
type pages struct {
	t    *testing.T
	base string
	http *http.Client
}

func (c *cluster) pages() *pages {
	jar, _ := cookiejar.New(nil)
	return &pages{t: c.t, base: c.entry, http: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
}

func (p *pages) send(req *http.Request, hdr ...string) answer {
	p.t.Helper()
	req.Header.Set("User-Agent", browserAgent)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := p.http.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return answer{status: res.StatusCode, header: res.Header, raw: buf.Bytes()}
}

func (p *pages) get(path string, hdr ...string) answer {
	p.t.Helper()
	req, _ := http.NewRequest("GET", p.base+path, nil)
	return p.send(req, hdr...)
}

func (p *pages) post(path string, form url.Values) answer {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.send(req, "Origin", p.base, "Sec-Fetch-Site", "same-origin")
}

func (p *pages) cookie(name string) string {
	u, _ := url.Parse(p.base + "/")
	for _, c := range p.http.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// The web app through the split deployment's gateway: log in on the page,
// the feed with the poster, the watch page, a range of the signed URL it
// plays, my videos. The pages call the services over HTTP as the viewer,
// who is the one the services record.
func TestWebPagesSplit(t *testing.T) {
	c := split(t)
	file := makeVideo(t, 2)
	content, _ := os.ReadFile(file)
	ann := c.client()
	annID := ann.login("ann@example.com", "correct horse", true)
	up := ann.upload(file, "Split <clip>")
	if up.status != 201 {
		t.Fatalf("upload: %d %s", up.status, up.raw)
	}
	id := up.json(t)["video"].(map[string]any)["id"].(string)

	b := c.pages()
	if p := b.get("/"); p.status != 200 || !strings.Contains(string(p.raw), `action="/login"`) {
		t.Fatalf("signed out home: %d %s", p.status, p.raw)
	}
	if p := b.post("/login", url.Values{"email": {"ann@example.com"}, "password": {"wrong horse"}}); p.status != 401 || !strings.Contains(string(p.raw), "The email or password is wrong.") {
		t.Fatalf("wrong password: %d", p.status)
	}
	home := b.post("/login", url.Values{"email": {"ann@example.com"}, "password": {"correct horse"}, "next": {"/"}})
	body := string(home.raw)
	if home.status != 200 || !strings.Contains(body, "Split &lt;clip&gt;") || !strings.Contains(body, `href="/watch/`+id+`"`) || !strings.Contains(body, "0:02") {
		t.Fatalf("feed after login: %d %s", home.status, body)
	}
	if b.cookie("reel_access") == "" {
		t.Fatal("no session cookie")
	}

	// The poster, signed for the viewer by the videos service, is cut in
	// the background.
	posterRe := regexp.MustCompile(`src="(/media/[^"]+/` + id + `/poster\.jpg)"`)
	eventually(t, 20*time.Second, func() string {
		m := posterRe.FindStringSubmatch(string(b.get("/").raw))
		if m == nil {
			return "no poster on the feed"
		}
		if p := b.get(m[1]); p.status != 200 || p.header.Get("Content-Type") != "image/jpeg" {
			return fmt.Sprintf("poster: %d", p.status)
		}
		return ""
	})
	if p := b.get("/?q=" + url.QueryEscape("<CLIP")); !strings.Contains(string(p.raw), "Split &lt;clip&gt;") {
		t.Fatalf("search: %s", p.raw)
	}
	if p := b.get("/?q=zebra"); strings.Contains(string(p.raw), "Split &lt;clip&gt;") {
		t.Fatalf("search for nothing: %s", p.raw)
	}

	watch := b.get("/watch/" + id)
	m := regexp.MustCompile(`<video id="player"[^>]* src="(/media/[^"]+/` + id + `/video\.mp4)"`).FindStringSubmatch(string(watch.raw))
	if watch.status != 200 || m == nil || !strings.Contains(string(watch.raw), "Viewing left today") {
		t.Fatalf("watch: %d %s", watch.status, watch.raw)
	}
	src := strings.ReplaceAll(m[1], "&amp;", "&")
	// The page's player asks for ranges without any header but the range.
	player := &http.Client{Timeout: time.Minute}
	req, _ := http.NewRequest("GET", c.entry+src, nil)
	req.Header.Set("Range", "bytes=0-99")
	res, err := player.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	_, _ = got.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != 206 || !bytes.Equal(got.Bytes(), content[:100]) {
		t.Fatalf("range of the signed URL: %d", res.StatusCode)
	}
	if p := b.get("/watch/00000000-0000-0000-0000-000000000000"); p.status != 404 {
		t.Fatalf("unknown video: %d", p.status)
	}
	if p := b.get("/mine"); p.status != 200 || !strings.Contains(string(p.raw), "Split &lt;clip&gt;") {
		t.Fatalf("my videos: %d", p.status)
	}
	if p := b.get("/account"); p.status != 200 || strings.Count(string(p.raw), "This browser") != 1 {
		t.Fatalf("account: %d %s", p.status, p.raw)
	}

	// The services recorded the page's actions as ann's, from the browser.
	admin := c.client()
	admin.login(adminEmail, adminPassword, false)
	eventually(t, 15*time.Second, func() string {
		logs := admin.jsonDo("GET", "/api/v1/logs?action=STREAM_VIDEO&user_id="+url.QueryEscape(annID), nil, 200)
		for _, it := range logs["items"].([]any) {
			if ev := it.(map[string]any); ev["user_agent"] == browserAgent && ev["target_id"] == id {
				return ""
			}
		}
		return fmt.Sprintf("no STREAM_VIDEO event from the page: %v", logs["items"])
	})
	// The access token went to the services, and into no log.
	tok := b.cookie("reel_access")
	for name, p := range c.procs {
		p.mu.Lock()
		all := p.log.String()
		p.mu.Unlock()
		if strings.Contains(all, tok) {
			t.Errorf("the access token is in the %s log", name)
		}
	}
}
