// What every page shares. The session is in HttpOnly cookies that scripts
// cannot read: api() calls the JSON API with them and, on a 401, asks the
// server once to rotate the session (POST /auth/refresh) and tries again.
// A timer also rotates it a minute before the access token expires, so
// that a page left open keeps working, forms included.

document.documentElement.classList.add('js');

let refreshing = null;
let timer = 0;

// ApiError is a refusal of the API: its status, problem code and message.
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code || '';
    this.retryAfter = retryAfter || 0;
  }
}

// refresh rotates the session once, however many callers ask at once.
export function refresh() {
  if (!refreshing) {
    refreshing = fetch('/auth/refresh', { method: 'POST', credentials: 'same-origin' })
      .then(async (r) => {
        if (!r.ok) throw await problem(r);
        const body = await r.json();
        keepAlive(body.expires_in);
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

function keepAlive(seconds) {
  clearTimeout(timer);
  timer = setTimeout(() => { refresh().catch(signedOut); }, Math.max(5, seconds - 60) * 1000);
}

// signedOut sends the browser to the login page, and back here after.
export function signedOut() {
  location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
}

// api is fetch for the JSON API, with the session kept alive.
export async function api(path, opts = {}) {
  const send = () => fetch(path, { credentials: 'same-origin', ...opts });
  let r = await send();
  if (r.status === 401) {
    try {
      await refresh();
    } catch (e) {
      signedOut();
      throw e;
    }
    r = await send();
  }
  return r;
}

// json calls the API and returns the answer's JSON, or throws ApiError.
export async function json(path, opts) {
  const r = await api(path, opts);
  if (!r.ok) throw await problem(r);
  return r.status === 204 ? null : r.json();
}

// problem reads a refusal's problem document.
export async function problem(r) {
  let p = {};
  try { p = await r.json(); } catch { /* not JSON */ }
  return new ApiError(r.status, p.code, p.detail, Number(r.headers.get('Retry-After')) || 0);
}

// bytes writes a byte count in binary units, as the server's pages do.
export function bytes(n) {
  if (n < 1024) return `${n} bytes`;
  let v = n;
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB']) {
    v /= 1024;
    if (v < 1024 || unit === 'TiB') {
      return `${v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1)} ${unit}`;
    }
  }
  return '';
}

// wait writes a number of seconds as words: "40 s", "3 min 5 s", "2 h 4 min".
export function wait(s) {
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

// Posters are cut after an upload is answered: until then the image is
// missing, and its frame shows instead of a broken image.
for (const img of document.querySelectorAll('img.poster')) {
  const broken = () => img.classList.add('broken');
  if (img.complete && img.naturalWidth === 0 && img.getAttribute('loading') !== 'lazy') broken();
  img.addEventListener('error', broken);
}

// A form refused with field errors: the first field to fix has the focus.
document.querySelector('[aria-invalid="true"]')?.focus();

const expires = Number(document.body.dataset.expires || 0);
if (expires) keepAlive(expires - Date.now() / 1000);
