// The client half of tus 1.0 resumable uploads, as reel serves them at
// /api/v1/uploads: POST creates an upload (Upload-Length, Upload-Metadata),
// PATCH sends bytes from Upload-Offset, HEAD tells how many the server
// holds. The upload's URL is kept in localStorage under the file's name,
// size and modification time, so the same file chosen again after a
// reload (or a lost connection) resumes where it stopped.
import { api, refresh, problem, ApiError } from './app.js';

const VERSION = '1.0.0';
const ENDPOINT = '/api/v1/uploads';

function b64(s) {
  const b = new TextEncoder().encode(s);
  let bin = '';
  for (const c of b) bin += String.fromCharCode(c);
  return btoa(bin);
}

// xhrProblem reads a refusal from an XMLHttpRequest's answer.
function xhrProblem(xhr) {
  let p = {};
  try { p = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
  return new ApiError(xhr.status, p.code, p.detail, Number(xhr.getResponseHeader('Retry-After')) || 0);
}

export class Upload {
  constructor(file, onProgress) {
    this.file = file;
    this.onProgress = onProgress;
    this.url = '';
    this.offset = 0;
    this.xhr = null;
    this.key = `reel-upload:${file.name}:${file.size}:${file.lastModified}`;
  }

  // resume asks the server how much of an earlier upload of this file it
  // holds. It answers the offset, or -1 when there is nothing to resume.
  // A finished upload answers its size, with videoId set. It throws when
  // the server cannot say.
  async resume() {
    const url = localStorage.getItem(this.key);
    if (!url) return -1;
    const r = await api(url, { method: 'HEAD', headers: { 'Tus-Resumable': VERSION } });
    if (r.status === 403 || r.status === 404 || r.status === 410) {
      this.forget();
      return -1;
    }
    // Anything else (the server finishing it, or out of reach) keeps the
    // upload: sending the file anew could make its video twice.
    if (!r.ok) throw new ApiError(r.status, '', '', Number(r.headers.get('Retry-After')) || 0);
    this.url = url;
    this.offset = Number(r.headers.get('Upload-Offset')) || 0;
    this.videoId = r.headers.get('Reel-Video-Id') || '';
    return this.offset;
  }

  // create starts a new upload; the server admits its size against the
  // quota and the daily limit first, and refuses with a problem document.
  async create(title) {
    const meta = `title ${b64(title)},filename ${b64(this.file.name)}`;
    const r = await api(ENDPOINT, {
      method: 'POST',
      headers: { 'Tus-Resumable': VERSION, 'Upload-Length': String(this.file.size), 'Upload-Metadata': meta },
    });
    if (r.status !== 201) throw await problem(r);
    // Only the path: the page's Content-Security-Policy allows this origin.
    this.url = new URL(r.headers.get('Location'), location.href).pathname;
    this.offset = 0;
    localStorage.setItem(this.key, this.url);
  }

  // send PATCHes the rest of the file in one request (XMLHttpRequest
  // reports upload progress; fetch does not) and resolves with the id of
  // the video the server made of it.
  async send() {
    try {
      return await this.patch();
    } catch (e) {
      if (e.status !== 401) throw e;
      await refresh();
      return this.patch();
    }
  }

  patch() {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      this.xhr = xhr;
      xhr.open('PATCH', this.url);
      xhr.setRequestHeader('Tus-Resumable', VERSION);
      xhr.setRequestHeader('Upload-Offset', String(this.offset));
      xhr.setRequestHeader('Content-Type', 'application/offset+octet-stream');
      xhr.upload.onprogress = (e) => this.onProgress(this.offset + e.loaded);
      xhr.onload = () => {
        this.xhr = null;
        if (xhr.status === 204) {
          this.offset = this.file.size;
          this.forget();
          resolve(xhr.getResponseHeader('Reel-Video-Id') || '');
          return;
        }
        const err = xhrProblem(xhr);
        // A refusal of the file itself ends the upload on the server too.
        if (xhr.status !== 401 && xhr.status !== 409 && xhr.status < 500) this.forget();
        reject(err);
      };
      xhr.onerror = () => { this.xhr = null; reject(new ApiError(0, 'network', 'the connection was lost')); };
      xhr.onabort = () => { this.xhr = null; reject(new ApiError(0, 'paused', 'paused')); };
      xhr.send(this.file.slice(this.offset));
    });
  }

  // pause stops sending; the server keeps what arrived.
  pause() {
    if (this.xhr) this.xhr.abort();
  }

  // cancel ends the upload on the server (tus termination), giving back
  // what it held.
  async cancel() {
    this.pause();
    if (this.url) await api(this.url, { method: 'DELETE', headers: { 'Tus-Resumable': VERSION } }).catch(() => {});
    this.forget();
  }

  forget() {
    localStorage.removeItem(this.key);
  }
}
