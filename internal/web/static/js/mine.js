// My videos: a video still processing is asked about every few seconds
// (GET /api/v1/videos/{id}) until it is ready or failed, and its row says
// so without a reload.
import { json } from './app.js';

const words = { ready: 'Ready', failed: 'Failed', processing: 'Processing…' };

async function poll() {
  const rows = [...document.querySelectorAll('.row[data-status="processing"]')];
  for (const row of rows) {
    try {
      const { video } = await json(`/api/v1/videos/${encodeURIComponent(row.dataset.id)}`);
      if (video.status === row.dataset.status) continue;
      row.dataset.status = video.status;
      const status = row.querySelector('.status');
      status.className = `status status-${video.status}`;
      status.textContent = words[video.status] || video.status;
      status.setAttribute('role', 'status');
    } catch {
      /* asked again at the next round */
    }
  }
  if (document.querySelector('.row[data-status="processing"]')) setTimeout(poll, 3000);
}

if (document.querySelector('.row[data-status="processing"]')) setTimeout(poll, 2000);
