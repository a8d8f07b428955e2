// The admin dashboard: sign-in, a navigation by role, and one view per hash route.
// Plain modules, no build step; every datum comes from the API of this origin.
import {api, signIn, signedIn, logout} from './api.js';
import {h, clear, errorBox, field, notice} from './dom.js';
import {startSso, takeSsoAnswer, finishSso} from './sso.js';
import {usersView, orgView} from './views_users.js';
import {auditView, jobsView, webhooksView} from './views_ops.js';
import {integrationsView} from './views_integrations.js';
import {tenantsView} from './views_tenants.js';

const root = document.getElementById('app');

const VIEWS = [
  {id: 'org', title: 'Organization', roles: ['admin', 'super_admin'], render: orgView},
  {id: 'users', title: 'Users', roles: ['admin', 'super_admin'], render: usersView},
  {id: 'audit', title: 'Audit log', roles: ['admin', 'super_admin'], render: auditView},
  {id: 'integrations', title: 'Integrations', roles: ['admin', 'super_admin'], render: integrationsView},
  {id: 'jobs', title: 'Jobs', roles: ['admin', 'super_admin'], render: jobsView},
  {id: 'webhooks', title: 'Webhooks', roles: ['admin', 'super_admin'], render: webhooksView},
  {id: 'tenants', title: 'Tenants', roles: ['super_admin'], render: tenantsView},
];

// Past a sign-in (password or SSO): admins go in, anyone else is told and signed out again.
async function enter(out) {
  const s = signedIn();
  if (!['admin', 'super_admin'].includes(s.user.role)) {
    await logout();
    out.append(errorBox({message: 'The dashboard is for admins; this account is a ' + s.user.role + '.',
      code: 'forbidden', status: 403}));
    return;
  }
  location.hash = '#/' + (s.user.role === 'super_admin' ? 'tenants' : 'users');
  route();
}

function loginView(message) {
  const out = h('div', {id: 'login-error'});
  const form = h('form', {class: 'card', id: 'login-form', autocomplete: 'on'},
    h('h1', {}, 'pg_saas admin'),
    message ? h('p', {class: 'notice'}, message) : null,
    field('Email', h('input', {name: 'email', type: 'email', required: true, autocomplete: 'username'})),
    field('Password', h('input', {name: 'password', type: 'password', required: true,
      autocomplete: 'current-password'})),
    field('Organization (slug, only if asked)', h('input', {name: 'organization', type: 'text'})),
    h('button', {type: 'submit', id: 'login-submit'}, 'Sign in'),
    out);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clear(out);
    const f = form.elements;
    try {
      await signIn(f.email.value.trim(), f.password.value, f.organization.value.trim());
      f.password.value = '';
      await enter(out);
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return h('main', {class: 'center'}, h('div', {class: 'login'}, form, ssoForm()));
}

// "Sign in with SSO": the organization's slug (and, if wished, the email as a hint to the provider).
// Not a form submission to the API (form-action would not allow the provider's redirect): the
// handler navigates the tab itself.
function ssoForm() {
  const out = h('div', {id: 'sso-error'});
  const form = h('form', {class: 'card', id: 'sso-form', autocomplete: 'on'},
    h('h2', {}, 'Single sign-on'),
    field('Organization (slug)', h('input', {name: 'slug', type: 'text', required: true,
      autocomplete: 'organization', spellcheck: 'false', autocapitalize: 'none'})),
    field('Email (optional, passed to the provider)', h('input', {name: 'login_hint', type: 'email',
      autocomplete: 'username'})),
    h('button', {type: 'submit', id: 'sso-submit'}, 'Sign in with SSO'),
    out);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clear(out);
    try {
      await startSso(form.elements.slug.value.trim().toLowerCase(), form.elements.login_hint.value.trim());
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return form;
}

// The page loaded with the provider's answer: finish the sign-in, or show why not.
async function ssoReturn(answer) {
  clear(root);
  root.append(loginView());
  const out = document.getElementById('sso-error');
  const wait = notice('Signing in with single sign-on…');
  out.append(wait);
  try {
    await finishSso(answer);
    wait.remove();
    await enter(out);
  } catch (err) {
    wait.remove();
    out.append(errorBox(err));
  }
}

function shell(current) {
  const s = signedIn();
  const views = VIEWS.filter(v => v.roles.includes(s.user.role));
  const nav = h('nav', {class: 'nav', 'aria-label': 'Views'},
    views.map(v => h('a', {href: '#/' + v.id, id: 'nav-' + v.id,
      'aria-current': v.id === current ? 'page' : null}, v.title)));
  const header = h('header', {class: 'top'},
    h('span', {class: 'brand'}, 'pg_saas'),
    h('span', {class: 'who', id: 'who'}, s.user.email, ' · ', s.user.role),
    h('button', {type: 'button', class: 'secondary', id: 'sign-out', onclick: async () => {
      try { await logout(); } catch (_) { /* the session ends here either way */ }
      location.hash = '';
      route();
    }}, 'Sign out'));
  const main = h('main', {id: 'view', class: 'view'});
  return {frame: h('div', {class: 'frame'}, header, nav, main), main, views};
}

async function route() {
  const s = signedIn();
  clear(root);
  if (!s) {
    root.append(loginView());
    return;
  }
  const id = (location.hash.match(/^#\/([a-z]+)/) || [])[1];
  const {frame, main, views} = shell(id);
  root.append(frame);
  const view = views.find(v => v.id === id) || views[0];
  if (view.id !== id) {
    history.replaceState(null, '', '#/' + view.id);
    frame.querySelector('#nav-' + view.id).setAttribute('aria-current', 'page');
  }
  document.title = view.title + ' · pg_saas admin';
  try {
    await view.render(main, s);
  } catch (err) {
    main.append(errorBox(err));
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('saas:signed-out', () => {
  clear(root);
  root.append(loginView('Your session ended; sign in again.'));
});
// a quick check that the API answers, shown on the sign-in page when it does not
api('GET', '/healthz').catch(err => {
  const box = document.getElementById('login-error');
  if (box) box.append(errorBox(err));
});
const ssoAnswer = takeSsoAnswer();
if (ssoAnswer) ssoReturn(ssoAnswer);
else route();
