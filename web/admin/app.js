// The admin dashboard: sign-in, a navigation by role, and one view per hash route.
// Plain modules, no build step; every datum comes from the API of this origin.
import {api, signIn, signedIn, logout} from './api.js';
import {h, clear, errorBox, field} from './dom.js';
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

function loginView(message) {
  const out = h('div', {id: 'login-error'});
  const form = h('form', {class: 'card login', id: 'login-form', autocomplete: 'on'},
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
      const s = signedIn();
      if (!['admin', 'super_admin'].includes(s.user.role)) {
        await logout();
        out.append(errorBox({message: 'The dashboard is for admins; this account is a ' + s.user.role + '.',
          code: 'forbidden', status: 403}));
        return;
      }
      location.hash = '#/' + (s.user.role === 'super_admin' ? 'tenants' : 'users');
      route();
    } catch (err) {
      out.append(errorBox(err));
    }
  });
  return h('main', {class: 'center'}, form);
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
route();
