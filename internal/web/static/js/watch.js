// The watch page: a player that stops because today's viewing allowance
// ran out says so; a video still processing reloads the page when ready.
import { json, bytes, wait } from './app.js';

const video = document.getElementById('player');
const error = document.getElementById('playback-error');

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
