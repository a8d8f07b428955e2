// Tenants (super_admin): every organization, provisioning one with its first admin, tier and
// limits, suspending and reactivating (PUT with If-Match).
import {api} from './api.js';
import {h, clear, errorBox, notice, field, select, table, Pager, formData, fmtTime} from './dom.js';

const TIERS = ['free', 'starter', 'professional', 'enterprise'];

export async function tenantsView(main) {
  const pager = new Pager(load);
  const msg = h('div', {id: 'tenant-msg'});
  const list = h('div', {id: 'tenant-list'});
  const form = h('form', {class: 'card', id: 'tenant-create'},
    h('h2', {}, 'Provision a tenant'),
    h('div', {class: 'grid'},
      field('Organization name', h('input', {name: 'name', required: true})),
      field('Slug (optional)', h('input', {name: 'slug', pattern: '[a-z0-9]+(-[a-z0-9]+)*'})),
      field('Tier', select('subscription_tier', TIERS, 'free')),
      field('Employee limit (optional)', h('input', {name: 'employee_limit', type: 'number', min: 0})),
      field('Features (comma-separated)', h('input', {name: 'features_enabled'})),
      field('Admin email', h('input', {name: 'admin_email', type: 'email', required: true})),
      field('Admin password', h('input', {name: 'admin_password', type: 'password', required: true, autocomplete: 'new-password'})),
      field('Admin first name', h('input', {name: 'admin_first_name', required: true})),
      field('Admin last name', h('input', {name: 'admin_last_name', required: true}))),
    h('button', {type: 'submit', id: 'tenant-submit'}, 'Create organization'));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clear(msg);
    const d = formData(form);
    const body = {name: d.name, subscription_tier: d.subscription_tier,
      admin_user: {email: d.admin_email, password: d.admin_password, first_name: d.admin_first_name, last_name: d.admin_last_name}};
    if (d.slug) body.slug = d.slug;
    if (d.employee_limit !== '') body.employee_limit = Number(d.employee_limit);
    if (d.features_enabled.trim()) body.features_enabled = d.features_enabled.split(',').map(x => x.trim()).filter(Boolean);
    try {
      const r = await api('POST', '/organizations', {body});
      form.reset();
      msg.append(notice(`Created ${r.body.organization.name} (${r.body.organization.slug}) with admin ${r.body.admin_user.email}.`));
      pager.reset();
      load();
    } catch (err) { msg.append(errorBox(err)); }
  });
  main.append(h('h1', {}, 'Tenants'), form, msg, list);

  async function change(org, changes) {
    clear(msg);
    try {
      const cur = await api('GET', '/organizations/' + org.id);
      const r = await api('PUT', '/organizations/' + org.id, {body: changes, etag: cur.etag});
      msg.append(notice(`${r.body.name}: ${Object.entries(changes).map(([k, v]) => k + ' = ' + v).join(', ')}.`));
      load();
    } catch (err) { msg.append(errorBox(err)); }
  }

  async function load() {
    clear(list);
    try {
      const r = await api('GET', '/organizations', {query: {limit: 25, cursor: pager.cursor}});
      pager.next = r.body.next_cursor;
      list.append(table([
        {title: 'Name', get: o => o.name},
        {title: 'Slug', get: o => h('code', {}, o.slug)},
        {title: 'Tier', get: o => {
          const sel = select('tier', TIERS, o.subscription_tier);
          sel.setAttribute('aria-label', 'tier of ' + o.slug);
          sel.addEventListener('change', () => change(o, {subscription_tier: sel.value}));
          return sel;
        }},
        {title: 'Limit', get: o => o.employee_limit ?? '—'},
        {title: 'Status', get: o => h('span', {class: 'badge ' + o.status}, o.status)},
        {title: 'Created', get: o => fmtTime(o.created_at)},
        {title: '', get: o => o.slug === 'platform' ? '' : h('button', {type: 'button', class: 'small tenant-toggle ' + (o.status === 'active' ? 'danger' : 'secondary'),
          dataset: {slug: o.slug}, onclick: () => change(o, {status: o.status === 'active' ? 'suspended' : 'active'})},
          o.status === 'active' ? 'Suspend' : 'Reactivate')},
      ], r.body.data, {rowData: o => ({slug: o.slug, status: o.status})}), pager.controls());
    } catch (err) { list.append(errorBox(err)); }
  }
  await load();
}
