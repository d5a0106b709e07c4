package web_test

import (
	"fmt"
	"math"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/reel-video/reel/internal/platform/sqldb/sqldbtest"
)

// streamed uploads a clip for token and waits until its renditions and
// its storyboard are made; it returns the video's id and its grant.
func (r *reel) streamed(token, title string, file []byte) (string, map[string]any) {
	r.t.Helper()
	id := r.upload(token, title, file)
	deadline := time.Now().Add(10 * time.Minute) // ffmpeg runs at the lowest priority
	for {
		st, body := r.api("POST", "/api/v1/videos/"+id+"/playback", token, nil)
		if rs, _ := body["renditions"].([]any); st == 200 && body["storyboard_url"] != nil && len(rs) >= 2 {
			return id, body
		}
		if time.Now().After(deadline) {
			_, v := r.api("GET", "/api/v1/videos/"+id, token, nil)
			r.t.Fatalf("no renditions and storyboard: %d %v\nvideo: %v\nlog:\n%s", st, body, v, r.logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The watch page plays a rendition (or native HLS), and switching quality
// while playing goes on from the same point; hovering the seek bar shows
// the storyboard's tile for that time, and so does moving it with the
// keyboard. On the all-in-one and through the gateway of a split reel.
func TestBrowserQualityAndStoryboard(t *testing.T) {
	deployments(t, map[string]string{"REEL_STREAMING": "on"}, func(t *testing.T, r *reel) {
		tok, _ := r.account("ann@example.com", "Ann")
		file, err := os.ReadFile(video(t, t.TempDir(), "clip.mp4", 6))
		if err != nil {
			t.Fatal(err)
		}
		id, grant := r.streamed(tok, "Harbour at dusk", file)
		tb := newBrowser(t, r)
		tb.login("ann@example.com", "correct horse")
		tb.open("/watch/" + id)
		tb.at("/watch/" + id)
		// Auto, one option per rendition, and the original.
		tb.until(`document.querySelectorAll("#quality option").length === 2 + ` + fmt.Sprint(len(grant["renditions"].([]any))))
		native := eval[bool](tb, `!!document.getElementById("player").canPlayType("application/vnd.apple.mpegurl")`)
		src := eval[string](tb, `document.getElementById("player").src`)
		t.Logf("native HLS: %v; auto plays %s", native, src)
		if native && !strings.HasSuffix(src, "/master.m3u8") || !native && !regexp.MustCompile(`/\d+\.mp4$`).MatchString(src) {
			t.Fatalf("auto plays %s", src)
		}
		if s := eval[string](tb, `document.querySelector("#quality").selectedOptions[0].textContent`); !strings.HasPrefix(s, "Auto") {
			t.Fatalf("first choice: %q", s)
		}

		eval[bool](tb, `(async () => { const v = document.getElementById("player"); v.muted = true; await v.play(); return true })()`)
		tb.until(`document.getElementById("player").currentTime > 1.5`)
		// Switch to a rendition the player is not playing.
		target := eval[string](tb, `(() => {
			const v = document.getElementById("player");
			const o = [...document.querySelectorAll("#quality option[data-bandwidth]")].find(o => new URL(o.dataset.src, location.href).href !== v.src);
			return o.value;
		})()`)
		before := eval[float64](tb, `(() => {
			const v = document.getElementById("player"), s = document.getElementById("quality");
			const at = v.currentTime; // a new source starts at 0 until it seeks
			s.value = `+fmt.Sprintf("%q", target)+`;
			s.dispatchEvent(new Event("change"));
			return at;
		})()`)
		tb.until(`(() => { const v = document.getElementById("player"); const o = document.querySelector('#quality option[value="` + target + `"]');
			return v.src === new URL(o.dataset.src, location.href).href && v.readyState >= 2 && !v.seeking && !v.paused })()`)
		after := eval[float64](tb, `document.getElementById("player").currentTime`)
		t.Logf("switched to %sp at %.2f s, going on at %.2f s", target, before, after)
		if before < 1.5 || math.Abs(after-before) > 1 {
			t.Fatalf("switching quality moved from %.2f s to %.2f s", before, after)
		}
		tb.until(fmt.Sprintf(`document.getElementById("player").currentTime > %f`, after+0.5)) // and it plays on
		if h := eval[float64](tb, `document.getElementById("player").videoHeight`); fmt.Sprint(h) != target {
			t.Fatalf("playing %v lines, chose %sp", h, target)
		}
		eval[bool](tb, `(() => { document.getElementById("player").pause(); return true })()`)

		// The storyboard's tile over the seek bar, under the pointer.
		box := eval[[]float64](tb, `(() => { const r = document.getElementById("seek").getBoundingClientRect(); return [r.left, r.top, r.width, r.height] })()`)
		tb.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box[0]+box[2]*0.5, box[1]+box[3]/2))
		tb.until(`!document.getElementById("preview").hidden && document.querySelector("#preview .tile").style.backgroundImage.startsWith('url("blob:')`)
		if s := tb.text("#preview .ptime"); s != "0:03" && s != "0:02" {
			t.Fatalf("preview time at the middle: %q", s)
		}
		pos := eval[string](tb, `document.querySelector("#preview .tile").style.backgroundPosition`)
		tb.shot("watch-preview")
		tb.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box[0]+box[2]*0.9, box[1]+box[3]/2))
		tb.until(`document.querySelector("#preview .ptime").textContent === "0:05"`)
		if p := eval[string](tb, `document.querySelector("#preview .tile").style.backgroundPosition`); p == pos {
			t.Fatalf("the same tile at 0:03 and 0:05: %s", p)
		}
		tb.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box[0]+box[2]*0.5, box[1]+box[3]*4))
		tb.until(`document.getElementById("preview").hidden`)

		// The keyboard moves the seek bar, with the same preview.
		tb.do(chromedp.Focus(chromedp.CSS("#seek")), chromedp.KeyEvent(kb.End))
		tb.until(`!document.getElementById("preview").hidden && document.getElementById("player").currentTime > 5`)
		if v := eval[string](tb, `document.getElementById("seek").getAttribute("aria-valuetext")`); !strings.HasSuffix(v, "of 0:06") {
			t.Fatalf("seek bar's text: %q", v)
		}
		tb.shot("watch-keyboard")

		// Where the browser plays no HLS itself, Auto plays the tallest
		// rendition that fits the player: 360p in a 960 px wide one.
		if _, err := chromedp.Call(tb.ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `{ const f = HTMLMediaElement.prototype.canPlayType;
				HTMLMediaElement.prototype.canPlayType = function (t) { return /mpegurl/i.test(t) ? "" : f.call(this, t) } }`,
		}); err != nil {
			t.Fatal(err)
		}
		tb.open("/watch/" + id)
		tb.at("/watch/" + id)
		tb.until(`document.getElementById("player").src.endsWith("/360.mp4") && document.getElementById("quality").selectedOptions[0].textContent === "Auto (360p)"`)
	})
}

// Admins list the videos service's jobs by state, cancel a waiting one
// and retry it, with plain forms. No worker runs here, so the jobs wait.
func TestAdminJobs(t *testing.T) {
	env := map[string]string{"REEL_ADMIN_EMAIL": "root@example.com", "REEL_ADMIN_PASSWORD": "correct horse", "REEL_TRANSCODE_WORKERS": "0"}
	sqldbtest.Engines(t, func(t *testing.T, dbURL string) {
		jobsPage(t, startReel(t, merge(env, map[string]string{"REEL_DATABASE_URL": dbURL})))
	})
	t.Run("split", func(t *testing.T) { jobsPage(t, startSplit(t, env)) })
}

func jobsPage(t *testing.T, r *reel) {
	tok, _ := r.account("ann@example.com", "Ann")
	id := r.upload(tok, "Waiting", clip(t))
	ann := r.browser()
	ann.login("ann@example.com", "correct horse")
	if p := ann.get("/admin/jobs"); p.status != 403 {
		t.Fatalf("jobs page for a user: %d", p.status)
	}
	if p := ann.post("/admin/jobs/1/cancel", nil); p.status != 403 {
		t.Fatalf("cancel by a user: %d", p.status)
	}
	root := r.browser()
	root.login("root@example.com", "correct horse")
	list := root.get("/admin/jobs?state=available")
	row := regexp.MustCompile(`<tr data-job="(\d+)">\s*<td data-label="Job">\d+</td>\s*<td data-label="Kind">transcode</td>`).FindStringSubmatch(list.body)
	if list.status != 200 || row == nil || !strings.Contains(list.body, `href="/watch/`+id+`"`) {
		t.Fatalf("jobs page: %d %s", list.status, list.body)
	}
	job := row[1]
	if p := root.get("/admin/jobs?state=bogus"); p.status != 422 && p.status != 400 {
		t.Fatalf("bad state: %d", p.status)
	}
	// Without the page's origin, nothing happens.
	if p := root.post("/admin/jobs/"+job+"/cancel", nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"); p.status != 403 {
		t.Fatalf("cross-site cancel: %d", p.status)
	}
	p := root.post("/admin/jobs/"+job+"/cancel?state=available", nil)
	if !strings.HasSuffix(p.url, "/admin/jobs?done=job-cancel&state=available") || !strings.Contains(p.body, "The job is cancelled.") || strings.Contains(p.body, `data-job="`+job+`"`) {
		t.Fatalf("cancel: %d %s %s", p.status, p.url, p.body)
	}
	p = root.get("/admin/jobs?state=cancelled&kind=transcode")
	if !strings.Contains(p.body, `data-job="`+job+`"`) || !strings.Contains(p.body, `action="/admin/jobs/`+job+`/retry?kind=transcode&amp;state=cancelled"`) {
		t.Fatalf("cancelled jobs: %s", p.body)
	}
	p = root.post("/admin/jobs/"+job+"/retry", url.Values{})
	if !strings.Contains(p.body, "The job will run again.") {
		t.Fatalf("retry: %d %s", p.status, p.body)
	}
	if p := root.get("/admin/jobs?state=available"); !strings.Contains(p.body, `data-job="`+job+`"`) {
		t.Fatalf("the retried job is not waiting: %s", p.body)
	}
	if p := root.post("/admin/jobs/999999/retry", nil); p.status != 404 || !strings.Contains(p.body, "No such job.") {
		t.Fatalf("unknown job: %d", p.status)
	}
}

// The jobs page in a real browser, at phone and desktop widths, and the
// activity log's table at phone width: no row wider than the screen.
func TestBrowserAdminJobs(t *testing.T) {
	r := startReel(t, map[string]string{"REEL_ADMIN_EMAIL": "root@example.com", "REEL_ADMIN_PASSWORD": "correct horse", "REEL_TRANSCODE_WORKERS": "0"})
	tok, _ := r.account("ann@example.com", "Ann")
	r.upload(tok, "Waiting", clip(t))
	tb := newBrowser(t, r)
	tb.login("root@example.com", "correct horse")
	tb.open("/admin/jobs")
	tb.at("/admin/jobs")
	tb.shot("admin-jobs")
	tb.do(chromedp.Click(chromedp.CSS(`tr:has(td[data-label="Kind"]) .job-actions button.danger`)))
	tb.at("/admin/jobs?done=job-cancel")
	if s := tb.text("main"); !strings.Contains(s, "The job is cancelled.") || !strings.Contains(s, "cancelled") {
		t.Fatalf("after cancel: %s", s)
	}
	tb.do(chromedp.Click(chromedp.CSS(`tr:has(.job-cancelled) .job-actions button:not(.danger)`)))
	tb.at("/admin/jobs?done=job-retry")
	tb.shot("admin-jobs-retried")
	for _, path := range []string{"/admin/jobs", "/admin/log"} {
		tb.open(path)
		tb.at(path)
		tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		if w := eval[float64](tb, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("%s is %v px wide on a 390 px phone", path, w)
		}
		tb.shot(strings.ReplaceAll(strings.Trim(path, "/"), "/", "-") + "-phone")
	}
}
