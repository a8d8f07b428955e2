// Single sign-on from the dashboard (docs/dashboard.md, "Signing in with SSO").
//
// "Sign in with SSO" first asks GET /auth/sso/{slug}/start?format=json with fetch (same origin, so
// the sign-in cookie __Host-saas_sso it sets is kept): an error (unknown slug 404, suspended organization
// 403, provider down 503, too many tries 429) is shown in the page. Otherwise the tab navigates to
// the answer's authorization_url, the organization's identity provider, which sends the browser
// back to the connection's redirect_uri.
// When that is this page (/admin/), it loads with ?code=&state= (or ?error=&state=); the page
// takes them out of the address bar at once and hands them to GET /auth/sso/callback, whose
// answer is login's: the token is then held in memory like a password sign-in's.
//
// Only an answer to a sign-in started from this tab is used: a mark in sessionStorage (no secret,
// just the time; removed when the answer comes back) tells. A link with someone else's code and
// state (login CSRF: being signed in, unawares, as the attacker's account) is refused here,
// without calling the API, so the state is not used up either.
import {signInSso, startSsoJson} from './api.js';

const PENDING = 'saas.sso.pending';
const MAX_AGE_MS = 10 * 60 * 1000;		// the API's sign-in state lives 10 minutes
const SLUG = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

// Leaves the page for the organization's provider. Throws (nothing stored) for a slug that cannot be
// one, and the API's error (an ApiError) when the sign-in cannot start: the page shows it.
export async function startSso(slug, hint) {
  if (!SLUG.test(slug)) {
    throw {status: 0, code: 'validation_failed',
      message: 'An organization slug is lower-case letters, digits and inner hyphens.',
      details: [{field: 'slug', message: 'is not a slug'}]};
  }
  const url = await startSsoJson(slug, hint);
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
    throw {status: 0, code: 'bad_answer', message: 'The server answered no provider address to go to.'};
  }
  sessionStorage.setItem(PENDING, JSON.stringify({at: Date.now()}));
  location.assign(url);
}

// The provider's answer in the address bar, if the page was loaded with one: removed from the
// address bar (and from history) at once. {params, started} or null.
export function takeSsoAnswer() {
  const q = new URLSearchParams(location.search);
  if (!q.has('code') && !q.has('state') && !q.has('error')) return null;
  const params = {};
  for (const k of ['code', 'state', 'error']) {
    if (q.has(k)) params[k] = q.get(k);
  }
  history.replaceState(null, '', location.pathname + location.hash);
  let pending = null;
  try { pending = JSON.parse(sessionStorage.getItem(PENDING)); } catch (_) { pending = null; }
  sessionStorage.removeItem(PENDING);
  const age = pending && typeof pending.at === 'number' ? Date.now() - pending.at : -1;
  return {params, started: age >= 0 && age < MAX_AGE_MS};
}

// Signs in with the answer; throws an ApiError (the API's body) or, for an answer this tab did
// not ask for, an error of its own without calling the API.
export async function finishSso(answer) {
  if (!answer.started) {
    throw {status: 0, code: 'sso_not_started_here',
      message: 'This single sign-on answer was not asked for from this page (or over 10 minutes ago); '
        + 'it was not used. Start the sign-in again.'};
  }
  return signInSso(answer.params);
}
