// The upload page: files dropped or chosen, each with its title, a progress
// bar with speed and time left, pause and resume. Each file is checked
// before any byte is sent against what the server would refuse: not a
// video, larger than the largest upload, more than the storage left, more
// than today's upload volume left. Files are sent one after the other.
import { json, bytes, wait } from './app.js';
import { Upload } from './tus.js';

const root = document.getElementById('uploader');
const maxSize = Number(root.dataset.maxSize) || 0;
const input = document.getElementById('files');
const drop = document.getElementById('drop');
const queue = document.getElementById('queue');
const startButton = document.getElementById('start');
const template = document.getElementById('item');
// Changes of state (not every progress step) are read out by screen readers.
const announce = document.getElementById('announce');
const items = [];
let running = false;

const videoName = /\.(mp4|m4v|mov|qt|webm|mkv|avi|ogv|mpe?g|ts|m2ts|3gp|flv|wmv)$/i;

function isVideo(f) {
  return (f.type && f.type.startsWith('video/')) || videoName.test(f.name);
}

// figures fetches the room left now: storage, and today's upload volume.
async function figures() {
  const [st, use] = await Promise.all([json('/api/v1/storage/me'), json('/api/v1/usage/me')]);
  const up = use.upload;
  return {
    storageFree: st.available_bytes, // -1: unlimited
    quota: st.quota_bytes,
    dailyFree: up.limit_bytes < 0 ? -1 : Math.max(0, up.limit_bytes - up.used_bytes - (up.reserved_bytes || 0)),
    dailyLimit: up.limit_bytes,
    resetsAt: Date.parse(use.resets_at),
  };
}

function resetsIn(at) {
  return wait((at - Date.now()) / 1000);
}

// refusal says why a file cannot be sent, or '' when it fits. ahead is
// what files before it in this batch will take of the room.
function refusal(file, fig, ahead) {
  const name = `“${file.name}”`;
  if (!isVideo(file)) return `${name} is not a video file. reel accepts MP4, WebM, QuickTime, Matroska and other video files.`;
  if (maxSize > 0 && file.size > maxSize) return `${name} is too large: ${bytes(file.size)}, and the largest upload is ${bytes(maxSize)}.`;
  if (!fig) return '';
  if (fig.storageFree >= 0 && file.size + ahead > fig.storageFree) {
    return `${name} (${bytes(file.size)}) does not fit in your storage: ${bytes(Math.max(0, fig.storageFree - ahead))} of ${bytes(fig.quota)} is free. Move videos to the trash to make room.`;
  }
  if (fig.dailyFree >= 0 && file.size + ahead > fig.dailyFree) {
    return `${name} (${bytes(file.size)}) is more than you may still upload today: ${bytes(Math.max(0, fig.dailyFree - ahead))} of ${bytes(fig.dailyLimit)}. The daily volume resets in ${resetsIn(fig.resetsAt)}.`;
  }
  return '';
}

// explain turns the server's refusal into the same sentences.
function explain(item, err, fig) {
  const name = `“${item.file.name}”`;
  switch (err.code) {
    case 'quota_exceeded':
      return `${name} does not fit in your storage${fig ? `: ${bytes(Math.max(0, fig.storageFree))} of ${bytes(fig.quota)} is free` : ''}. Move videos to the trash to make room.`;
    case 'daily_limit_reached':
      return `${name} is more than you may still upload today. The daily volume resets in ${wait(err.retryAfter)}.`;
    case 'unsupported_media':
      return `${name} is not a video reel can play.`;
    case 'upload_too_large':
    case 'max_size_exceeded':
      return `${name} is too large: the largest upload is ${bytes(maxSize)}.`;
  }
  return `${name} could not be uploaded: ${err.message}.`;
}

class Item {
  constructor(file) {
    this.file = file;
    this.state = 'queued';
    this.samples = [];
    this.el = template.content.firstElementChild.cloneNode(true);
    this.title = this.el.querySelector('.title');
    this.title.value = file.name.replace(/\.[^.]+$/, '').slice(0, 200) || file.name;
    this.el.querySelector('.file').textContent = `${file.name} · ${bytes(file.size)}`;
    this.bar = this.el.querySelector('progress');
    this.bar.setAttribute('aria-label', `Progress of ${file.name}`);
    this.status = this.el.querySelector('.state');
    this.pauseButton = this.el.querySelector('.pause');
    this.resumeButton = this.el.querySelector('.resume');
    this.removeButton = this.el.querySelector('.remove');
    this.pauseButton.addEventListener('click', () => this.pause());
    this.resumeButton.addEventListener('click', () => this.resume());
    this.removeButton.addEventListener('click', () => this.remove());
    this.up = new Upload(file, (sent) => this.progress(sent));
    this.resumable = -1;
    this.sent = 0;
  }

  say(text, state) {
    this.status.textContent = text;
    if (state && state !== this.state) announce.textContent = `${this.file.name}: ${text || state}`;
    if (state) {
      this.state = state;
      this.el.classList.toggle('refused', state === 'refused');
      this.el.classList.toggle('done', state === 'done');
    }
    const active = this.state === 'sending';
    const stopped = this.state === 'paused' || this.state === 'interrupted';
    this.pauseButton.hidden = !active;
    this.resumeButton.hidden = !stopped;
    this.removeButton.hidden = active || this.state === 'done' || this.state === 'finishing';
    this.title.disabled = this.state !== 'queued' && this.state !== 'refused';
  }

  progress(sent) {
    this.sent = sent;
    const now = performance.now();
    this.samples.push([now, sent]);
    while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    const [t0, b0] = this.samples[0];
    const speed = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0;
    const size = this.file.size;
    this.bar.value = size ? Math.floor((sent / size) * 1000) : 1000;
    if (sent >= size) {
      this.say(`All ${bytes(size)} sent. Checking the video…`, 'finishing');
      return;
    }
    const left = speed > 0 ? ` · ${wait((size - sent) / speed)} left` : '';
    this.say(`${bytes(sent)} of ${bytes(size)} · ${bytes(Math.round(speed))}/s${left}`);
  }

  // look finds an earlier upload of this file to resume.
  async look() {
    this.unsure = false;
    try {
      this.resumable = await this.up.resume();
    } catch {
      this.resumable = -1;
      this.unsure = true; // asked again before anything is sent
    }
    if (this.resumable >= 0) {
      this.title.value = this.title.value || this.file.name;
      this.bar.value = this.file.size ? Math.floor((this.resumable / this.file.size) * 1000) : 0;
      this.say(`An earlier upload of this file stopped at ${bytes(this.resumable)} of ${bytes(this.file.size)}; it resumes from there.`);
    }
  }

  async run(fig) {
    this.samples = [];
    try {
      if (this.unsure) await this.look();
      if (this.unsure) {
        this.say('The server could not say whether it already holds an earlier upload of this file. Try again in a moment.', 'interrupted');
        return;
      }
      if (this.resumable < 0) {
        const why = refusal(this.file, fig, 0);
        if (why) {
          this.say(why, 'refused');
          return;
        }
        const title = this.title.value.trim();
        if (!title) {
          this.say('Give the video a title first.', 'refused');
          this.title.focus();
          return;
        }
        this.say('Starting…', 'sending');
        await this.up.create(title);
      } else if (this.up.videoId) {
        this.finished(this.up.videoId);
        return;
      }
      this.say(`Sending from ${bytes(this.up.offset)}…`, 'sending');
      const id = await this.up.send();
      this.finished(id);
    } catch (err) {
      if (err.code === 'paused') {
        this.say(`Paused at ${bytes(this.sent || this.up.offset)} of ${bytes(this.file.size)}. Resume whenever you like, even after a reload.`, 'paused');
      } else if (err.code === 'network' || err.status >= 500 || err.status === 409) {
        this.say('The connection was lost. Resume to continue where it stopped.', 'interrupted');
      } else {
        this.say(explain(this, err, fig), 'refused');
      }
    }
  }

  finished(id) {
    this.bar.value = 1000;
    this.say('Uploaded.', 'done');
    this.status.textContent = 'Uploaded. ';
    const a = document.createElement('a');
    a.href = id ? `/watch/${encodeURIComponent(id)}` : '/mine';
    a.textContent = id ? `Watch “${this.title.value}”` : 'See it in your videos';
    this.status.append(a);
  }

  pause() {
    this.up.pause();
  }

  async resume() {
    this.say('Resuming…', 'sending');
    try {
      this.resumable = await this.up.resume();
    } catch {
      this.say('The server could not say how much of this upload it holds. Try again in a moment.', 'interrupted');
      return;
    }
    if (this.resumable < 0) {
      this.say('The server no longer has this upload. Remove it and add the file again.', 'refused');
      return;
    }
    await this.run(null);
  }

  remove() {
    if (this.up.url && this.state !== 'done') this.up.cancel();
    this.el.remove();
    items.splice(items.indexOf(this), 1);
    update();
  }
}

// add queues files, says at once which cannot be sent, and finds earlier
// uploads to resume.
async function add(files) {
  const added = [];
  for (const f of files) {
    const it = new Item(f);
    items.push(it);
    queue.append(it.el);
    added.push(it);
    it.say('Checking…', 'queued');
  }
  await Promise.all(added.map((it) => it.look()));
  await precheck();
  update();
}

async function precheck() {
  let fig = null;
  try { fig = await figures(); } catch { /* the server checks again */ }
  let ahead = 0;
  for (const it of items) {
    if (it.state !== 'queued' && it.state !== 'refused') continue;
    if (it.resumable >= 0) continue; // its room is held already
    const why = refusal(it.file, fig, ahead);
    if (why) {
      it.say(why, 'refused');
    } else {
      it.say('Ready to upload.', 'queued');
      ahead += it.file.size;
    }
  }
}

function update() {
  startButton.disabled = running || !items.some((it) => it.state === 'queued');
}

async function start() {
  running = true;
  update();
  for (const it of items) {
    if (it.state !== 'queued') continue;
    let fig = null;
    try { fig = await figures(); } catch { /* the server checks anyway */ }
    await it.run(fig);
  }
  running = false;
  update();
}

input.addEventListener('change', () => {
  add([...input.files]);
  input.value = '';
});
startButton.addEventListener('click', start);
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
}
for (const type of ['dragleave', 'drop']) {
  drop.addEventListener(type, () => drop.classList.remove('over'));
}
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  add([...e.dataTransfer.files]);
});
// A file dropped beside the zone must not replace the page.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());
