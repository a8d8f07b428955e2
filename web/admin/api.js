// The API client: same origin, the token held in memory only (never in storage or a cookie),
// every error turned into an ApiError carrying the API's error body.

let session = null;   // {token, user, expiresAt}

export class ApiError extends Error {
  constructor(status, body, requestId) {
    const e = body && body.error ? body.error : null;
    super(e && e.message ? e.message : `HTTP ${status}`);
    this.status = status;
    this.code = e ? e.code : 'network_error';
    this.details = e && Array.isArray(e.details) ? e.details : [];
    this.requestId = (e && e.request_id) || requestId || null;
  }
}

export function signedIn() { return session; }

export function signOut() { session = null; }

// One request. opts: {body, etag (If-Match), query (object), cookies (send this origin's cookies:
// only the SSO start and callback: the sign-in cookie)}. Resolves {status, body, etag}.
export async function api(method, path, opts = {}) {
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const headers = {Accept: 'application/json'};
  if (session) headers.Authorization = 'Bearer ' + session.token;
  if (opts.etag) headers['If-Match'] = opts.etag;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let resp;
  try {
    resp = await fetch(url, {method, headers, body, credentials: opts.cookies ? 'same-origin' : 'omit',
                              cache: 'no-store'});
  } catch (err) {
    throw new ApiError(0, {error: {code: 'network_error', message: 'The server cannot be reached: ' + err.message}});
  }
  const text = await resp.text();
  let doc = null;
  if (text) {
    try { doc = JSON.parse(text); } catch (_) { doc = null; }
  }
  if (!resp.ok) {
    if (resp.status === 401 && session && path !== '/auth/login') {
      session = null;
      window.dispatchEvent(new CustomEvent('saas:signed-out'));
    }
    throw new ApiError(resp.status, doc, resp.headers.get('X-Request-Id'));
  }
  return {status: resp.status, body: doc, etag: resp.headers.get('ETag')};
}

// The answer of POST /auth/login (and of the SSO callback, which answers the same) as the session.
function adopt(body) {
  session = {token: body.token, user: body.user, expiresAt: Date.now() + 1000 * body.expires_in};
  return session;
}

export async function signIn(email, password, organization) {
  const body = {email, password};
  if (organization) body.organization = organization;
  const r = await api('POST', '/auth/login', {body});
  return adopt(r.body);
}

// Single sign-on's first step, as JSON (not the redirect): the provider's authorization URL. The
// answer sets the sign-in cookie, which the callback needs: hence same-origin credentials.
export async function startSsoJson(slug, hint) {
  const r = await api('GET', '/auth/sso/' + encodeURIComponent(slug) + '/start',
    {query: {format: 'json', login_hint: hint}, cookies: true});
  return r.body ? r.body.authorization_url : null;
}

// Single sign-on's last step: the provider's code and state (or error) handed to the API.
export async function signInSso(params) {
  const r = await api('GET', '/auth/sso/callback', {query: params, cookies: true});
  return adopt(r.body);
}

export async function logout() {
  if (!session) return;
  try { await api('POST', '/auth/logout'); } finally { session = null; }
}
