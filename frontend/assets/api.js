// The REST API client: same origin only, session cookie + CSRF header on unsafe methods.

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body?.message || `request failed (${status})`);
    this.status = status;
    this.code = body?.error || 'http_error';
    this.details = body?.details;
    this.retryAfter = retryAfter;
  }
}

let csrf = null;

/** Remembers the session's CSRF token (from login or /auth/me). */
export function setCsrf(token) {
  csrf = token || null;
}

/** Calls `/api/v2{path}`; resolves to the parsed JSON (or null), rejects with ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v2${path}`, init);
  } catch {
    throw new ApiError(0, { error: 'network', message: 'Tessera could not be reached. Check your connection and try again.' });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: text.slice(0, 200) }; }
  }
  if (!res.ok) {
    const retry = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
    throw new ApiError(res.status, data, Number.isFinite(retry) ? retry : undefined);
  }
  return data;
}
