// The watch page: the player's source (native HLS where the browser has
// it, else the plain-<video> rendition that fits the player and the
// connection, else the original), a quality menu that keeps the position
// and play state, and a seek bar that previews the frame under the
// pointer (or the keyboard's position) from the storyboard. A player that
// stops because today's viewing allowance ran out says so; a video still
// processing reloads the page when ready.
import { json, bytes, wait } from './app.js';

const video = document.getElementById('player');
const error = document.getElementById('playback-error');
const bar = document.getElementById('player-bar');

if (video) {
  video.addEventListener('error', async () => {
    let text = 'The video could not be played. Reload the page to try again.';
    try {
      const use = await json('/api/v1/usage/me');
      const e = use.egress;
      if (e.limit_bytes >= 0 && e.used_bytes >= e.limit_bytes) {
        const left = (Date.parse(use.resets_at) - Date.now()) / 1000;
        text = `Today's viewing allowance is used up: ${bytes(e.used_bytes)} of ${bytes(e.limit_bytes)}. It resets at 00:00 UTC, in ${wait(left)}.`;
      }
    } catch { /* keep the plain message */ }
    error.textContent = text;
    error.hidden = false;
  });
}
if (video && bar) {
  const measured = throughput();
  quality(measured);
  seekBar();
  fullScreen();
}

// clock writes seconds as m:ss or h:mm:ss, as the server's pages do.
function clock(s) {
  s = Math.max(0, Math.floor(s || 0));
  const mm = String(Math.floor(s / 60) % 60).padStart(s >= 3600 ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

// quality chooses the source and lets the viewer choose another. Where
// the browser plays HLS itself, Auto leaves adaptation to it; elsewhere
// Auto plays the renditions as plain files and adapts between them: it
// starts at the tallest rung that fits the player and the throughput, goes
// up when the measured throughput comfortably carries a taller rung the
// player is large enough for, and down a rung when playback stalls. A rung
// it left for stalling is not tried again for a while, longer each time,
// so that it does not go back and forth.
function quality(measured) {
  const select = document.getElementById('quality');
  if (!select) return; // the original only, until renditions exist
  const abs = (src) => new URL(src, location.href).href;
  const rungs = [...select.options].filter((o) => o.dataset.bandwidth)
    .map((o) => ({ height: +o.value, width: +o.dataset.width, bandwidth: +o.dataset.bandwidth, src: abs(o.dataset.src) }))
    .sort((a, b) => a.height - b.height);
  const original = select.querySelector('option[value="original"]');
  if (original && !video.canPlayType(original.dataset.type || 'video/mp4')) original.remove();
  const hls = bar.dataset.hls && video.canPlayType('application/vnd.apple.mpegurl') ? bar.dataset.hls : '';
  const auto = select.options[0];
  const current = () => rungs.find((r) => video.src === r.src);
  let stalls = [];
  let switched = 0; // when Auto last changed rung
  let ceiling = { height: Infinity, until: -Infinity, hold: 15000 };
  let stuck = 0;

  // fit is the tallest rung the player shows at its size (in device
  // pixels) whose bandwidth times margin the throughput carries, or the
  // lowest. Until anything is measured, a modest guess stands in.
  const fit = (margin) => {
    const w = (video.clientWidth || 640) * devicePixelRatio * 1.25;
    const h = (video.clientHeight || 360) * devicePixelRatio * 1.25;
    const link = measured.bps || (navigator.connection?.downlink || 1.5) * 1e6;
    const cap = performance.now() < ceiling.until ? ceiling.height : Infinity;
    let pick = rungs[0];
    for (const r of rungs) {
      if ((r.width <= w || r.height <= h) && r.bandwidth * margin <= link && r.height < cap) pick = r;
    }
    return pick;
  };
  const label = () => {
    auto.textContent = hls ? 'Auto' : `Auto (${current()?.height || '…'}p)`;
  };

  // use plays src from where the player is, playing if it was.
  const use = (src) => {
    const href = abs(src);
    if (video.src === href) return;
    const at = video.currentTime;
    const playing = !video.paused && !video.ended;
    const rate = video.playbackRate;
    switched = performance.now();
    stalls = [];
    video.src = href;
    if (at > 0 || playing) {
      video.addEventListener('loadedmetadata', () => {
        video.currentTime = at;
        video.playbackRate = rate;
        if (playing) video.play().catch(() => {});
      }, { once: true });
    }
    measured.from();
    label();
  };
  const choose = () => {
    if (select.value === 'auto') use(hls || fit(1.25).src);
    else use(select.selectedOptions[0].dataset.src);
    label();
  };
  select.addEventListener('change', choose);
  const adapting = () => !hls && select.value === 'auto';

  // down leaves a rung that stalls, and keeps Auto below it for a while.
  const down = () => {
    const i = rungs.indexOf(current());
    if (i <= 0) return;
    const now = performance.now();
    ceiling = { height: rungs[i].height, hold: now < ceiling.until + 60000 ? Math.min(ceiling.hold * 2, 300000) : 15000 };
    ceiling.until = now + ceiling.hold;
    measured.bps = Math.min(measured.bps || Infinity, rungs[i - 1].bandwidth * 1.25);
    use(rungs[i - 1].src);
  };
  // A stall is a wait for data while playing, not for a seek or for the
  // new source of a switch; two within 30 s, or one of 4 s, step down.
  video.addEventListener('waiting', () => {
    const now = performance.now();
    if (!adapting() || video.seeking || video.currentTime === 0 || now - switched < 3000) return;
    stalls = stalls.filter((t) => now - t < 30000).concat(now);
    clearTimeout(stuck);
    if (stalls.length >= 2) down();
    else stuck = setTimeout(() => { if (adapting() && video.readyState < 3 && !video.paused) down(); }, 4000);
  });
  video.addEventListener('playing', () => clearTimeout(stuck));
  // up goes to a taller rung when the throughput carries it by half as
  // much again, not within 8 s of the last change.
  const up = () => {
    if (!adapting() || performance.now() - switched < 8000) return;
    const cur = current();
    const want = fit(1.5);
    if (cur && want.height > cur.height) use(want.src);
  };
  measured.changed = () => {
    if (!adapting()) return;
    if (video.currentTime === 0 && video.paused) choose(); // not started: choose afresh
    else up();
  };
  addEventListener('resize', up); // full screen, a turned phone
  // Each second, the buffer's growth; a probe only of a rung the player
  // is large enough for (fit with no bandwidth asked).
  setInterval(() => {
    const cur = current();
    if (!adapting() || document.hidden || !cur) return;
    const roomy = fit(0);
    measured.sample(cur, roomy.height > cur.height && rungs[rungs.indexOf(cur) + 1], video.paused);
  }, 1000);
  choose();
}

// throughput measures the connection for Auto: from the Resource Timing
// entries of the media service's answers (the storyboard's sprites, a
// probe, media downloads where the browser reports them) and from how fast
// the buffer grows while the player downloads, at the rung's bandwidth.
// When the player downloads nothing (all buffered) and a taller rung could
// be wanted, a probe fetches the start of the next rung.
function throughput() {
  const m = { bps: 0, changed: null, last: 0 };
  const add = (bps) => {
    if (!(bps > 0) || !Number.isFinite(bps)) return;
    m.bps = m.bps ? m.bps * 0.6 + bps * 0.4 : bps;
    m.last = performance.now();
    m.changed?.();
  };
  if (window.PerformanceObserver) {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const size = e.encodedBodySize || e.transferSize;
        const ms = e.responseEnd - e.requestStart;
        if (e.name.includes('/media/') && size >= 16384 && ms > 0) add((size * 8) / (ms / 1000));
      }
    }).observe({ type: 'resource', buffered: true });
  }
  let mark = null;
  let probed = 0;
  let gap = 4000;
  m.from = () => { mark = null; gap = 4000; };
  m.sample = (rung, next, paused) => {
    const now = performance.now();
    const b = video.buffered;
    let start = -1;
    let end = 0;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime + 0.5 && b.end(i) >= video.currentTime) [start, end] = [b.start(i), b.end(i)];
    }
    // Only the same range growing: a seek into another is no download.
    if (mark && video.src === mark.src && start === mark.start && end > mark.end && !video.seeking) {
      add(((end - mark.end) / ((now - mark.t) / 1000)) * rung.bandwidth);
    }
    mark = { src: video.src, start, end, t: now };
    if (!next || paused || video.networkState === 2 || now - m.last < gap || now - probed < gap) return;
    probed = now;
    gap = Math.min(gap * 2, 120000);
    fetch(next.src, { headers: { Range: 'bytes=0-262143' }, cache: 'no-store' }).then((r) => r.arrayBuffer()).catch(() => {});
  };
  return m;
}

// seekBar keeps the range and clock with the player, and shows storyboard
// previews over the range: under the pointer, or at the range's value
// while the keyboard moves it.
function seekBar() {
  const seek = document.getElementById('seek');
  const time = document.getElementById('clock');
  const preview = document.getElementById('preview');
  const tile = preview.querySelector('.tile');
  const at = preview.querySelector('.ptime');
  let dragging = false;
  const sync = () => {
    const d = video.duration;
    if (Number.isFinite(d) && d > 0) seek.max = d;
    if (!dragging) seek.value = video.currentTime;
    const text = `${clock(video.currentTime)} / ${clock(seek.max)}`;
    time.textContent = text;
    seek.setAttribute('aria-valuetext', text.replace(' / ', ' of '));
  };
  for (const e of ['timeupdate', 'loadedmetadata', 'durationchange', 'seeked']) video.addEventListener(e, sync);
  seek.addEventListener('input', () => {
    video.currentTime = +seek.value;
    sync();
  });
  seek.addEventListener('pointerdown', () => { dragging = true; });
  seek.addEventListener('change', () => { dragging = false; });
  sync();

  let cues = [];
  const show = (t, x) => {
    const c = cues.find((q) => t >= q.start && t < q.end) || cues[cues.length - 1];
    tile.hidden = !c?.img;
    if (c?.img) {
      tile.style.width = `${c.w}px`;
      tile.style.height = `${c.h}px`;
      tile.style.backgroundImage = `url("${c.img}")`;
      tile.style.backgroundPosition = `-${c.x}px -${c.y}px`;
    }
    at.textContent = clock(t);
    preview.hidden = false;
    const half = (c?.img ? c.w : 48) / 2 + 6;
    preview.style.left = `${Math.min(Math.max(x, half), seek.clientWidth - half)}px`;
  };
  const hide = () => { preview.hidden = true; };
  const place = (t) => (t / (+seek.max || 1)) * seek.clientWidth;
  seek.addEventListener('pointermove', (e) => {
    const r = seek.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    show(f * (+seek.max || 0), f * r.width);
  });
  seek.addEventListener('pointerleave', hide);
  seek.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') hide();
  });
  let idle = 0;
  seek.addEventListener('keyup', (e) => {
    if (!e.key.startsWith('Arrow') && !['Home', 'End', 'PageUp', 'PageDown'].includes(e.key)) return;
    show(+seek.value, place(+seek.value));
    clearTimeout(idle);
    idle = setTimeout(hide, 2500);
  });
  seek.addEventListener('blur', hide);
  addEventListener('resize', hide); // its place was for the old width

  if (bar.dataset.storyboard) {
    storyboard(bar.dataset.storyboard).then((c) => { cues = c; })
      .catch(() => { /* no previews: the bar still seeks */ });
  }
}

// storyboard reads the storyboard's WebVTT file (cues whose text is a
// sprite URL with a #xywh= fragment) and loads its sprites.
async function storyboard(url) {
  const r = await fetch(url, { credentials: 'same-origin' });
  if (!r.ok) throw new Error(`storyboard: ${r.status}`);
  const secs = (s) => s.split(':').reduce((acc, p) => acc * 60 + parseFloat(p), 0);
  const cues = [];
  for (const block of (await r.text()).split(/\r?\n\r?\n/)) {
    const m = block.match(/([\d:.]+)\s+-->\s+([\d:.]+)[^\n]*\r?\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/);
    if (!m) continue;
    cues.push({ start: secs(m[1]), end: secs(m[2]), src: new URL(m[3], r.url).href, x: +m[4], y: +m[5], w: +m[6], h: +m[7] });
  }
  const sprites = new Map();
  for (const c of cues) {
    if (!sprites.has(c.src)) {
      sprites.set(c.src, fetch(c.src).then((s) => (s.ok ? s.blob() : Promise.reject(new Error('sprite'))))
        .then((b) => URL.createObjectURL(b)));
    }
  }
  for (const c of cues) c.img = await sprites.get(c.src);
  return cues;
}

// fullScreen puts the player with its own bar (seek bar and previews,
// quality) in full screen, rather than the bare <video> with the
// browser's controls: by the button or f; Escape leaves, as the
// browser's own full screen does. (No double click: Firefox's controls
// would put the bare <video> in full screen at the same time.)
function fullScreen() {
  const screen = document.getElementById('screen');
  const button = document.getElementById('full');
  if (!document.fullscreenEnabled || !screen.requestFullscreen) return; // the <video>'s own stays
  video.controlsList?.add('nofullscreen');
  screen.classList.add('own-full');
  button.hidden = false;
  const toggle = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else screen.requestFullscreen().catch(() => {});
  };
  button.addEventListener('click', toggle);
  document.addEventListener('fullscreenchange', () => {
    const on = document.fullscreenElement === screen;
    button.setAttribute('aria-label', on ? 'Leave full screen' : 'Full screen');
    button.title = on ? 'Leave full screen (f)' : 'Full screen (f)';
  });
  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.target.closest?.('select, textarea, input:not([type="range"]), [contenteditable]')) return;
    if (e.key === 'f' || e.key === 'F') toggle();
    else if (e.key === 'Escape' && document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else return;
    e.preventDefault();
  });
}

const processing = document.getElementById('processing');
if (processing) {
  const check = async () => {
    try {
      const { video: v } = await json(`/api/v1/videos/${encodeURIComponent(processing.dataset.id)}`);
      if (v.status !== 'processing') {
        location.reload();
        return;
      }
    } catch { /* asked again */ }
    setTimeout(check, 3000);
  };
  setTimeout(check, 2000);
}
