package web_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// noNativeHLS makes the tab's pages see a browser without native HLS, so
// that the page adapts between the plain renditions itself.
func (tb *tab) noNativeHLS() {
	tb.t.Helper()
	if _, err := chromedp.Call(tb.ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `{ const f = HTMLMediaElement.prototype.canPlayType;
			HTMLMediaElement.prototype.canPlayType = function (t) { return /mpegurl/i.test(t) ? "" : f.call(this, t) } }`,
	}); err != nil {
		tb.t.Fatal(err)
	}
}

// playing is true while the player plays the rung of that height, Auto
// says so, and it is past the given second.
func playing(height int, after float64) string {
	return fmt.Sprintf(`(() => { const v = document.getElementById("player");
		return v.src.endsWith("/%d.mp4") && document.getElementById("quality").selectedOptions[0].textContent === "Auto (%dp)" &&
			!v.paused && v.readyState >= 3 && v.currentTime > %f })()`, height, height, after)
}

// Where the browser plays no HLS itself, Auto starts low on a slow
// connection and steps up, going on from where it was, when the
// connection allows; two stalls step it down, and it keeps below the rung
// it left for a while; it starts low in a small player and steps up when
// the player grows. Full screen takes the page's own bar along, so the
// storyboard's previews show there too; f enters it and Escape leaves.
func TestBrowserAutoQualityAndFullScreen(t *testing.T) {
	r := startReel(t, map[string]string{"REEL_STREAMING": "on"})
	tok, _ := r.account("ann@example.com", "Ann")
	file, err := os.ReadFile(video(t, t.TempDir(), "clip.mp4", 12))
	if err != nil {
		t.Fatal(err)
	}
	id, grant := r.streamed(tok, "Harbour at dusk", file)
	t.Logf("renditions: %v", grant["renditions"])
	tb := newBrowser(t, r)
	tb.login("ann@example.com", "correct horse")
	tb.noNativeHLS()
	start := `(async () => { const v = document.getElementById("player"); v.muted = true; v.loop = true; await v.play(); return true })()`

	// A slow connection: 20 kB/s carries the lowest rung but with no
	// margin; Auto plays it.
	tb.limit(20_000, -1)
	tb.open("/watch/" + id)
	tb.at("/watch/" + id)
	tb.until(`document.getElementById("player").src.endsWith("/240.mp4") && document.getElementById("quality").selectedOptions[0].textContent === "Auto (240p)"`)
	tb.shot("auto-slow")
	eval[bool](tb, start)
	tb.until(playing(240, 1))
	// The connection gets fast: Auto steps up in the 960 px wide player,
	// from where it was and still playing. The page notes where the old
	// source was when the new one started, and where the new one went.
	eval[bool](tb, `(() => { const v = document.getElementById("player"); let last = 0; window.switches = [];
		v.addEventListener("timeupdate", () => { last = v.currentTime });
		v.addEventListener("emptied", () => switches.push([last, performance.now()]));
		v.addEventListener("seeked", () => { const s = switches[switches.length - 1]; if (s && s.length === 2) s.push(v.currentTime) });
		return true })()`)
	tb.limit(-1, -1)
	tb.until(playing(360, 0))
	sw := eval[[][]float64](tb, `switches`)
	t.Logf("stepped up to 360p: %v (the old source's position, when, the new one's)", sw)
	// The clip loops, so the position may be anywhere but where it was;
	// starting over would not seek at all.
	if len(sw) != 1 || len(sw[0]) != 3 || sw[0][2] < 0.1 || math.Abs(sw[0][2]-sw[0][0]) > 0.5 {
		t.Fatalf("stepping up did not go on from where it was: %v", sw)
	}
	tb.shot("auto-stepped-up")

	// Two stalls while playing step down a rung, and Auto keeps below the
	// rung it left for a while (15 s the first time) however fast the
	// connection, then goes back up.
	eval[bool](tb, `new Promise(r => setTimeout(r, 3500)).then(() => { const v = document.getElementById("player");
		v.dispatchEvent(new Event("waiting")); v.dispatchEvent(new Event("waiting")); return true })`)
	tb.until(playing(240, 0))
	tb.until(playing(360, 0))
	sw = eval[[][]float64](tb, `switches`)
	t.Logf("down and up again: %v", sw)
	if len(sw) != 3 || sw[2][1]-sw[1][1] < 14900 {
		t.Fatalf("Auto went back up too soon: %v", sw)
	}

	// A phone-sized player takes the lowest rung; grown, it steps up.
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	tb.open("/watch/" + id)
	tb.at("/watch/" + id)
	tb.until(`document.getElementById("quality").selectedOptions[0].textContent === "Auto (240p)"`)
	eval[bool](tb, start)
	tb.until(playing(240, 0.5))
	tb.do(chromedp.EmulateViewport(1280, 900))
	tb.until(playing(360, 0))

	// Full screen by the keyboard: the page's bar, the previews and the
	// quality menu come along.
	eval[bool](tb, `(() => { document.getElementById("player").pause(); return true })()`)
	dir := shotsDir(t)
	for _, w := range screens {
		tb.emulate(w)
		if eval[string](tb, `document.getElementById("full").getAttribute("aria-label")`) != "Full screen" {
			t.Fatal("the full screen button is not labelled")
		}
		tb.do(chromedp.Focus(chromedp.CSS("#seek")), chromedp.KeyEvent("f"))
		tb.until(`document.fullscreenElement && document.fullscreenElement.id === "screen" && document.getElementById("full").getAttribute("aria-label") === "Leave full screen"`)
		eval[chromedp.Void](tb, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))`)
		box := eval[[]float64](tb, `(() => { const r = document.getElementById("seek").getBoundingClientRect(); return [r.left, r.top, r.width, r.height, innerHeight] })()`)
		if box[1] <= 0 || box[1]+box[3] > box[4] {
			t.Fatalf("the seek bar is not on the full screen: %v", box)
		}
		tb.do(chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, box[0]+box[2]*0.5, box[1]+box[3]/2))
		tb.until(`!document.getElementById("preview").hidden && document.querySelector("#preview .tile").style.backgroundImage.startsWith('url("blob:')`)
		// Shown, not only laid out: the topmost element over the tile's middle.
		if !eval[bool](tb, `(() => { const r = document.querySelector("#preview .tile").getBoundingClientRect();
			const e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
			return r.width > 0 && r.top >= 0 && !!e && !!e.closest("#screen") })()`) {
			t.Fatal("the preview is not on the full screen")
		}
		if v := eval[bool](tb, `!!document.getElementById("quality").closest(":fullscreen")`); !v {
			t.Fatal("the quality menu is not in full screen")
		}
		png, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot()) // a full-page one would resize the page
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("AutoQualityAndFullScreen-fullscreen-preview-%d.png", w.width)), png, 0o644); err != nil {
			t.Fatal(err)
		}
		tb.do(chromedp.KeyEvent(kb.Escape))
		tb.until(`!document.fullscreenElement && document.getElementById("full").getAttribute("aria-label") === "Full screen"`)
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
	if !strings.HasSuffix(eval[string](tb, `document.getElementById("player").src`), "/360.mp4") {
		t.Fatal("full screen changed the rung")
	}
}
