package web_test

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// First run: the admin is created through the setup link, which then no
// longer works; then someone signs up.
func TestBrowserFirstRunAndSignUp(t *testing.T) {
	r := startReel(t, nil)
	link := r.setupURL()
	tb := newBrowser(t, r)
	tb.do(chromedp.Navigate(link))
	tb.until(`document.querySelector("h1")?.textContent === "Set up reel"`)
	tb.shot("setup")
	tb.fill("#email", "root@example.com", "#username", "root", "#password", "correct horse", "#confirm", "correct horse")
	tb.do(chromedp.Click(chromedp.CSS("main button.primary")))
	tb.at("/admin/users?done=welcome")
	if s := tb.text("main"); !strings.Contains(s, "root@example.com") || !strings.Contains(s, "Welcome to reel.") {
		t.Fatalf("after setup: %s", s)
	}
	tb.shot("admin-users")
	tb.do(chromedp.Navigate(link))
	tb.until(`document.querySelector("h1")?.textContent === "Not Found"`)
	if s := tb.text("main"); !strings.Contains(s, "This setup link is not valid") {
		t.Fatalf("spent link: %s", s)
	}

	tb.open("/")
	tb.do(chromedp.Click(chromedp.CSS(".logout button")))
	tb.at("/login?done=logout")
	tb.open("/signup")
	tb.fill("#email", "ann@example.com", "#username", "Ann", "#password", "short", "#confirm", "short")
	// The browser's own check (minlength) stops a short password; the
	// server's answer is the same when it is bypassed.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("main form").noValidate = true`))
	tb.do(chromedp.Click(chromedp.CSS("main button.primary")))
	tb.until(`document.querySelector(".field-error") !== null`)
	if s := tb.text("main"); !strings.Contains(s, "The password must have at least 8 characters.") {
		t.Fatalf("short password: %s", s)
	}
	tb.shot("signup-refused")
	tb.fill("#password", "correct horse", "#confirm", "correct horse")
	tb.do(chromedp.Click(chromedp.CSS("main button.primary")))
	tb.at("/?done=welcome")
	if s := tb.text("main"); !strings.Contains(s, "Welcome to reel.") || !strings.Contains(s, "No videos yet") {
		t.Fatalf("home after sign-up: %s", s)
	}
	tb.shot("home-empty")
}

// An upload with progress, paused, resumed after a reload from where it
// stopped; the video plays and seeks; it goes to the trash and back. On
// the all-in-one and through the gateway of a split reel.
func TestBrowserUploadResumePlayTrash(t *testing.T) {
	deployments(t, nil, func(t *testing.T, r *reel) {
		r.account("ann@example.com", "Ann")
		file := video(t, t.TempDir(), "Holiday clip.mp4", 20)
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		tb := newBrowser(t, r)
		tb.login("ann@example.com", "correct horse")
		// An expired access cookie: the page is refreshed on the server...
		before := tb.expire()
		tb.open("/upload")
		tb.at("/upload")
		if after := tb.cookie("/auth/refresh", "reel_refresh"); after == "" || after == before || tb.cookie("/", "reel_access") == "" {
			t.Fatal("the page did not rotate the session")
		}
		// ...and the scripts' API calls (the figures checked when a file is
		// chosen) refresh it and try again.
		before = tb.expire()
		tb.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
		tb.until(`document.querySelector(".item .state")?.textContent === "Ready to upload." && !document.getElementById("start").disabled`)
		if after := tb.cookie("/auth/refresh", "reel_refresh"); after == "" || after == before || tb.cookie("/", "reel_access") == "" {
			t.Fatal("the script did not rotate the session")
		}
		if v := eval[string](tb, `document.querySelector(".item .title").value`); v != "Holiday clip" {
			t.Fatalf("title from the file name: %q", v)
		}
		tb.shot("upload-chosen")

		// Slow the browser's uploads down so that there is time to pause.
		tb.throttle(float64(fi.Size()) / 8)
		tb.do(chromedp.Click(chromedp.CSS("#start")))
		tb.until(`document.querySelector(".item progress").value >= 150 && document.querySelector(".item .state").textContent.includes("left")`)
		if s := tb.text(".item .state"); !strings.Contains(s, "/s") || !strings.Contains(s, "of "+fmtSize(fi.Size())) {
			t.Fatalf("progress text: %q", s)
		}
		tb.shot("upload-progress")
		tb.do(chromedp.Click(chromedp.CSS(".item .pause")))
		tb.until(`document.querySelector(".item .state").textContent.startsWith("Paused at")`)
		tb.shot("upload-paused")

		// A reload loses the page's state; the same file chosen again resumes.
		tb.do(chromedp.Reload())
		tb.at("/upload")
		tb.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
		tb.until(`document.querySelector(".item .state")?.textContent.startsWith("An earlier upload of this file stopped at") && !document.getElementById("start").disabled`)
		held := eval[int](tb, `document.querySelector(".item progress").value`)
		if held <= 0 || held >= 1000 {
			t.Fatalf("resumed at %d‰", held)
		}
		tb.shot("upload-resumable")
		tb.throttle(-1)
		tb.do(chromedp.Click(chromedp.CSS("#start")))
		tb.until(`document.querySelector(".item.done a") !== null`)
		tb.shot("upload-done")
		id := eval[string](tb, `document.querySelector(".item.done a").getAttribute("href").split("/").pop()`)
		got := eval[map[string]any](tb, fmt.Sprintf(`fetch("/api/v1/videos/%s").then(r => r.json()).then(b => b.video)`, id))
		if got["title"] != "Holiday clip" || got["size_bytes"].(float64) != float64(fi.Size()) || got["status"] != "ready" {
			t.Fatalf("the uploaded video: %v", got)
		}
		if stored := eval[bool](tb, `localStorage.length === 0`); !stored {
			t.Fatal("the finished upload is still remembered")
		}

		// Its poster is cut in the background: wait for it for the pictures.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			tb.open("/")
			tb.at("/")
			if eval[bool](tb, `(() => { const i = document.querySelector(".card img.poster"); return !!i && i.complete && i.naturalWidth > 0 })()`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no poster")
			}
		}
		tb.shot("home")
		tb.dark(true)
		tb.shot("home-dark")
		tb.dark(false)

		tb.do(chromedp.Click(chromedp.CSS(".card a")))
		tb.at("/watch/" + id)
		tb.until(`document.getElementById("player").readyState >= 1`)
		eval[bool](tb, `(async () => { const v = document.getElementById("player"); v.muted = true; await v.play(); return true })()`)
		tb.until(`document.getElementById("player").currentTime > 1`)
		ms := eval[float64](tb, `new Promise((ok, fail) => {
			const v = document.getElementById("player");
			const t0 = performance.now();
			v.addEventListener("seeked", () => ok(performance.now() - t0), { once: true });
			v.currentTime = v.duration / 2;
			setTimeout(() => fail(new Error("no seeked event")), 10000);
		})`)
		at := eval[float64](tb, `document.getElementById("player").currentTime`)
		t.Logf("seek to the middle: %.0f ms, at %.1f s", ms, at)
		if ms > 1000 || math.Abs(at-10) > 1 {
			t.Fatalf("seek to the middle took %.0f ms and landed at %.1f s", ms, at)
		}
		tb.until(`document.getElementById("player").currentTime > 10.5`) // plays on from there
		eval[bool](tb, `(() => { document.getElementById("player").pause(); return true })()`)
		if s := tb.text("#allowance"); !strings.Contains(s, "Viewing left today") {
			t.Fatalf("allowance: %q", s)
		}
		tb.shot("watch")

		tb.open("/mine")
		tb.at("/mine")
		tb.shot("mine")
		tb.do(chromedp.Click(chromedp.CSS(`.row[data-id="` + id + `"] button.danger`)))
		tb.at("/mine?done=deleted")
		if s := tb.text("main"); strings.Contains(s, "Holiday clip") {
			t.Fatalf("still in my videos: %s", s)
		}
		tb.open("/trash")
		tb.at("/trash")
		if s := tb.text("main"); !strings.Contains(s, "Holiday clip") || !strings.Contains(s, "Deleted for good on") {
			t.Fatalf("trash: %s", s)
		}
		tb.shot("trash")
		tb.do(chromedp.Click(chromedp.CSS("main .row button")))
		tb.at("/mine?done=restored")
		if s := tb.text("main"); !strings.Contains(s, "Holiday clip") || !strings.Contains(s, "The video is back") {
			t.Fatalf("restored: %s", s)
		}
		tb.open("/usage")
		tb.at("/usage")
		if s := tb.text("main"); !strings.Contains(s, "597 KiB of 50 MiB") && !strings.Contains(s, "of 50 MiB") {
			t.Fatalf("usage: %s", s)
		}
		tb.shot("usage")
		tb.open("/account")
		tb.at("/account")
		if s := tb.text("main"); !strings.Contains(s, "This browser") {
			t.Fatalf("account: %s", s)
		}
		tb.shot("account")
	})
}

// A file larger than the storage left is refused before a byte is sent;
// an admin raises the quota and reads the change in the log; then it
// uploads.
func TestBrowserQuotaAndAdmin(t *testing.T) {
	r := startReel(t, map[string]string{"REEL_ADMIN_EMAIL": "root@example.com", "REEL_ADMIN_PASSWORD": "correct horse", "REEL_STORAGE_QUOTA": "200KiB"})
	_, annID := r.account("ann@example.com", "Ann")
	file := video(t, t.TempDir(), "Too big.mp4", 20)
	ann := newBrowser(t, r)
	ann.login("ann@example.com", "correct horse")
	ann.open("/upload")
	ann.at("/upload")
	ann.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
	ann.until(`document.querySelector(".item.refused") !== null`)
	if s := ann.text(".item .state"); !strings.Contains(s, "does not fit in your storage") || !strings.Contains(s, "of 200 KiB is free") {
		t.Fatalf("refusal: %q", s)
	}
	if !eval[bool](ann, `document.getElementById("start").disabled`) {
		t.Fatal("the upload button is enabled for a refused file")
	}
	st := eval[map[string]any](ann, `fetch("/api/v1/storage/me").then(r => r.json())`)
	if st["reserved_bytes"].(float64) != 0 || st["used_bytes"].(float64) != 0 {
		t.Fatalf("bytes were sent or held: %v", st)
	}
	ann.shot("over-quota")

	admin := ann.another()
	admin.login("root@example.com", "correct horse")
	admin.open("/admin/users")
	admin.do(chromedp.SendKeys(chromedp.CSS("#q"), "ann"+kb.Enter))
	admin.at("/admin/users?q=ann")
	admin.shot("admin-users")
	admin.do(chromedp.Click(chromedp.CSS(`a[href="/admin/users/` + annID + `"]`)))
	admin.at("/admin/users/" + annID)
	admin.fill("#quota", "1GiB")
	admin.do(chromedp.Click(chromedp.CSS("main button.primary")))
	admin.at("/admin/users/" + annID + "?done=saved")
	if v := eval[string](admin, `document.getElementById("quota").value`); v != "1GiB" {
		t.Fatalf("quota after saving: %q", v)
	}
	admin.shot("admin-user")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		admin.open("/admin/log?action=UPDATE_USER")
		admin.at("/admin/log?action=UPDATE_USER")
		if strings.Contains(admin.text("main"), "admin updated account ann@example.com") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change is not in the log: %s", admin.text("main"))
		}
	}
	if href := eval[string](admin, `document.querySelector(".exports a").getAttribute("href")`); !strings.Contains(href, "action=UPDATE_USER") || !strings.Contains(href, "format=ndjson") {
		t.Fatalf("export link: %q", href)
	}
	admin.shot("admin-log")

	ann.do(chromedp.Reload())
	ann.at("/upload")
	ann.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
	ann.until(`document.querySelector(".item .state")?.textContent === "Ready to upload." && !document.getElementById("start").disabled`)
	ann.do(chromedp.Click(chromedp.CSS("#start")))
	ann.until(`document.querySelector(".item.done a") !== null`)
}

// The upload flow with the keyboard alone: Tab to the file chooser, the
// title, the Upload button, then to the new video's link.
func TestBrowserKeyboardUpload(t *testing.T) {
	r := startReel(t, nil)
	r.account("ann@example.com", "Ann")
	file := video(t, t.TempDir(), "clip.mp4", 4)
	tb := newBrowser(t, r)
	tb.login("ann@example.com", "correct horse")
	tb.open("/upload")
	tb.at("/upload")
	tab := func(to string, back bool) {
		t.Helper()
		for range 30 {
			if eval[bool](tb, `document.activeElement && document.activeElement.matches(`+fmt.Sprintf("%q", to)+`)`) {
				return
			}
			if back {
				tb.do(chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
			} else {
				tb.do(chromedp.KeyEvent(kb.Tab))
			}
		}
		t.Fatalf("Tab never reached %s (at %s)", to, eval[string](tb, `document.activeElement.outerHTML`))
	}
	tab("#files", false)
	if eval[string](tb, `getComputedStyle(document.activeElement).outlineStyle`) == "none" {
		t.Fatal("the focused file chooser shows no focus ring")
	}
	tb.shot("keyboard-chooser")
	// The file dialog is the system's: the test hands the file over.
	tb.do(chromedp.SetUploadFiles(chromedp.CSS("#files"), []string{file}))
	tb.until(`document.querySelector(".item .state")?.textContent === "Ready to upload." && !document.getElementById("start").disabled`)
	tab(".item .title", false)
	tb.do(chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)), chromedp.KeyEvent("Typed title"))
	tab("#start", false)
	tb.shot("keyboard-start")
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.until(`document.querySelector(".item.done a") !== null`)
	tab(".item.done a", true)
	tb.shot("keyboard-done")
	tb.do(chromedp.KeyEvent(kb.Enter))
	tb.until(`location.pathname.startsWith("/watch/") && document.querySelector("h1")?.textContent === "Typed title"`)
}

func fmtSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.0f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
