// Organization and users: list with search and paging, create, edit with ETag, deactivate, delete.
import {api} from './api.js';
import {h, clear, errorBox, notice, field, select, table, Pager, formData, fmtTime} from './dom.js';

const ROLES = ['user', 'admin', 'super_admin'];
const STATUSES = ['active', 'inactive', 'suspended'];

export async function orgView(main, s) {
  const r = await api('GET', '/organizations/' + s.user.org_id);
  const org = r.body;
  let etag = r.etag;
  const msg = h('div', {});
  const form = h('form', {class: 'card', id: 'org-form'},
    h('h2', {}, org.name),
    h('dl', {class: 'facts'},
      h('dt', {}, 'Id'), h('dd', {}, h('code', {}, org.id)),
      h('dt', {}, 'Tier'), h('dd', {id: 'org-tier'}, org.subscription_tier),
      h('dt', {}, 'Employee limit'), h('dd', {}, org.employee_limit ?? '—'),
      h('dt', {}, 'Status'), h('dd', {id: 'org-status'}, org.status),
      h('dt', {}, 'Features'), h('dd', {}, (org.features_enabled || []).join(', ') || '—'),
      h('dt', {}, 'Updated'), h('dd', {}, fmtTime(org.updated_at), ' (version ', org.version, ')')),
    field('Name', h('input', {name: 'name', value: org.name, required: true})),
    field('Slug', h('input', {name: 'slug', value: org.slug, required: true})),
    h('button', {type: 'submit'}, 'Save'), msg);
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    clear(msg);
    const d = formData(form);
    try {
      const u = await api('PUT', '/organizations/' + org.id, {body: {name: d.name, slug: d.slug}, etag});
      etag = u.etag;
      msg.append(notice('Saved (version ' + u.body.version + ').'));
    } catch (err) { msg.append(errorBox(err)); }
  });
  main.append(h('h1', {}, 'Organization'), form);
}

export async function usersView(main) {
  const pager = new Pager(load);
  const filters = h('form', {class: 'filters', id: 'user-filters'},
    field('Search', h('input', {name: 'q', type: 'search', placeholder: 'email or name'})),
    field('Role', select('role', [['', 'any'], ...ROLES])),
    field('Status', select('status', [['', 'any'], ...STATUSES])),
    field('Per page', select('limit', ['10', '25', '50', '100'], '25')),
    h('button', {type: 'submit'}, 'Search'));
  filters.addEventListener('submit', ev => { ev.preventDefault(); pager.reset(); load(); });
  const list = h('div', {id: 'user-list'});
  const editor = h('div', {id: 'user-editor'});
  main.append(h('h1', {}, 'Users'),
    h('div', {class: 'toolbar'}, h('button', {type: 'button', id: 'user-new', onclick: () => createForm()}, 'New user')),
    editor, filters, list);

  async function load() {
    const q = formData(filters);
    clear(list);
    try {
      const r = await api('GET', '/users', {query: {...q, cursor: pager.cursor}});
      pager.next = r.body.next_cursor;
      list.append(table([
        {title: 'Email', get: u => h('a', {href: '#/users', class: 'user-link', onclick: ev => { ev.preventDefault(); editForm(u.id); }}, u.email)},
        {title: 'Name', get: u => `${u.first_name} ${u.last_name}`},
        {title: 'Role', get: u => u.role},
        {title: 'Status', get: u => h('span', {class: 'badge ' + u.status}, u.status)},
        {title: 'Last login', get: u => fmtTime(u.last_login)},
      ], r.body.data, {rowData: u => ({id: u.id, email: u.email}), empty: 'No user matches.'}), pager.controls());
    } catch (err) { list.append(errorBox(err)); }
  }

  function createForm() {
    clear(editor);
    const msg = h('div', {});
    const form = h('form', {class: 'card', id: 'user-create'},
      h('h2', {}, 'New user'),
      field('Email', h('input', {name: 'email', type: 'email', required: true})),
      field('First name', h('input', {name: 'first_name', required: true})),
      field('Last name', h('input', {name: 'last_name', required: true})),
      field('Role', select('role', ROLES, 'user')),
      field('Password (optional)', h('input', {name: 'password', type: 'password', autocomplete: 'new-password'})),
      h('div', {class: 'row'}, h('button', {type: 'submit'}, 'Create'),
        h('button', {type: 'button', class: 'secondary', onclick: () => clear(editor)}, 'Cancel')), msg);
    form.addEventListener('submit', async ev => {
      ev.preventDefault();
      clear(msg);
      const d = formData(form);
      if (!d.password) delete d.password;
      try {
        const r = await api('POST', '/users', {body: d});
        clear(editor);
        editor.append(notice('Created ' + r.body.email + '.'));
        load();
      } catch (err) { msg.append(errorBox(err)); }
    });
    editor.append(form);
  }

  async function editForm(id) {
    clear(editor);
    let r;
    try { r = await api('GET', '/users/' + id); } catch (err) { editor.append(errorBox(err)); return; }
    const u = r.body;
    let etag = r.etag;
    const msg = h('div', {});
    const form = h('form', {class: 'card', id: 'user-edit', dataset: {id}},
      h('h2', {}, 'Edit ', u.email),
      h('p', {class: 'muted small'}, 'Version ', h('span', {id: 'user-version'}, u.version),
        ' — saving sends If-Match: a change made meanwhile elsewhere is refused (412).'),
      field('Email', h('input', {name: 'email', type: 'email', value: u.email})),
      field('First name', h('input', {name: 'first_name', value: u.first_name})),
      field('Last name', h('input', {name: 'last_name', value: u.last_name})),
      field('Role', select('role', ROLES, u.role)),
      field('Status', select('status', STATUSES, u.status)),
      h('div', {class: 'row'},
        h('button', {type: 'submit', id: 'user-save'}, 'Save'),
        h('button', {type: 'button', class: 'secondary', id: 'user-deactivate', onclick: () => save({status: 'inactive'})}, 'Deactivate'),
        h('button', {type: 'button', class: 'danger', id: 'user-delete', onclick: del}, 'Delete'),
        h('button', {type: 'button', class: 'secondary', onclick: () => clear(editor)}, 'Close')),
      msg);
    form.addEventListener('submit', ev => {
      ev.preventDefault();
      const d = formData(form);
      const changed = {};
      for (const k of ['email', 'first_name', 'last_name', 'role', 'status']) if (d[k] !== u[k]) changed[k] = d[k];
      if (!Object.keys(changed).length) { clear(msg); msg.append(notice('Nothing changed.')); return; }
      save(changed);
    });

    async function save(changes) {
      clear(msg);
      try {
        const p = await api('PUT', '/users/' + id, {body: changes, etag});
        etag = p.etag;
        Object.assign(u, p.body);
        form.querySelector('#user-version').textContent = p.body.version;
        form.elements.status.value = p.body.status;
        msg.append(notice('Saved: ' + p.body.email + ' is ' + p.body.status + ' (version ' + p.body.version + ').'));
        load();
      } catch (err) { msg.append(errorBox(err)); }
    }

    async function del(ev) {
      const b = ev.currentTarget;
      if (b.dataset.armed !== '1') {
        b.dataset.armed = '1';
        b.textContent = 'Really delete?';
        return;
      }
      clear(msg);
      try {
        await api('DELETE', '/users/' + id, {etag});
        clear(editor);
        editor.append(notice('Deleted ' + u.email + '.'));
        load();
      } catch (err) { msg.append(errorBox(err)); }
    }
    editor.append(form);
  }

  await load();
}
