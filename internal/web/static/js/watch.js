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
  const measured = { bps: 0 };
  quality(measured);
  seekBar(measured);
}

// clock writes seconds as m:ss or h:mm:ss, as the server's pages do.
function clock(s) {
  s = Math.max(0, Math.floor(s || 0));
  const mm = String(Math.floor(s / 60) % 60).padStart(s >= 3600 ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}

// quality chooses the source and lets the viewer choose another.
function quality(measured) {
  const select = document.getElementById('quality');
  if (!select) return; // the original only, until renditions exist
  const rungs = [...select.options].filter((o) => o.dataset.bandwidth)
    .map((o) => ({ option: o, height: +o.value, width: +o.dataset.width, bandwidth: +o.dataset.bandwidth, src: o.dataset.src }))
    .sort((a, b) => a.height - b.height);
  const original = select.querySelector('option[value="original"]');
  if (original && !video.canPlayType(original.dataset.type || 'video/mp4')) original.remove();
  const hls = bar.dataset.hls && video.canPlayType('application/vnd.apple.mpegurl') ? bar.dataset.hls : '';
  const auto = select.options[0];
  let stalls = [];

  // fit is the tallest rendition the player shows at its size (in device
  // pixels) that the connection carries, or the lowest.
  const fit = () => {
    const w = (video.clientWidth || 640) * devicePixelRatio * 1.25;
    const h = (video.clientHeight || 360) * devicePixelRatio * 1.25;
    const link = measured.bps || (navigator.connection?.downlink || 0) * 1e6;
    let pick = rungs[0];
    for (const r of rungs) {
      if ((r.width <= w || r.height <= h) && (!link || r.bandwidth <= link * 0.8)) pick = r;
    }
    return pick;
  };
  const label = () => {
    auto.textContent = hls ? 'Auto' : `Auto (${current()?.height || '…'}p)`;
  };
  const current = () => rungs.find((r) => video.src === new URL(r.src, location.href).href);

  // use plays src from where the player is, playing if it was.
  const use = (src) => {
    const href = new URL(src, location.href).href;
    if (video.src === href) return;
    const at = video.currentTime;
    const playing = !video.paused && !video.ended;
    const rate = video.playbackRate;
    video.src = href;
    if (at > 0 || playing) {
      video.addEventListener('loadedmetadata', () => {
        video.currentTime = at;
        video.playbackRate = rate;
        if (playing) video.play().catch(() => {});
      }, { once: true });
    }
    label();
  };
  const choose = () => {
    stalls = [];
    if (select.value === 'auto') use(hls || fit().src);
    else use(select.selectedOptions[0].dataset.src);
  };
  select.addEventListener('change', choose);
  // Auto steps down a rung when playback stalls twice within 30 s.
  video.addEventListener('waiting', () => {
    if (hls || select.value !== 'auto' || video.seeking || video.currentTime === 0) return;
    const now = performance.now();
    stalls = stalls.filter((t) => now - t < 30000).concat(now);
    const i = rungs.indexOf(current());
    if (stalls.length >= 2 && i > 0) {
      stalls = [];
      use(rungs[i - 1].src);
    }
  });
  measured.changed = () => {
    if (select.value === 'auto' && !hls && video.currentTime === 0 && video.paused) choose();
  };
  choose();
  label();
}

// seekBar keeps the range and clock with the player, and shows storyboard
// previews over the range: under the pointer, or at the range's value
// while the keyboard moves it.
function seekBar(measured) {
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
    storyboard(bar.dataset.storyboard, measured).then((c) => { cues = c; })
      .catch(() => { /* no previews: the bar still seeks */ });
  }
}

// storyboard reads the storyboard's WebVTT file (cues whose text is a
// sprite URL with a #xywh= fragment) and loads its sprites. A sprite's
// download is also a measure of the connection for the automatic quality.
async function storyboard(url, measured) {
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
      const t0 = performance.now();
      sprites.set(c.src, fetch(c.src).then((s) => (s.ok ? s.blob() : Promise.reject(new Error('sprite'))))
        .then((b) => {
          const ms = performance.now() - t0;
          if (b.size >= 65536 && ms > 0) {
            measured.bps = (b.size * 8) / (ms / 1000);
            measured.changed?.();
          }
          return URL.createObjectURL(b);
        }));
    }
  }
  for (const c of cues) c.img = await sprites.get(c.src);
  return cues;
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
