// The audit log (filters, the chain's verification), jobs (dead letters, retry one by one and
// in bulk) and webhooks received.
import {api} from './api.js';
import {h, clear, errorBox, notice, field, select, table, Pager, formData, fmtTime} from './dom.js';

const SERVICES = ['user-service', 'payment-service', 'communication-service'];

export async function auditView(main) {
  const pager = new Pager(load);
  const verify = h('div', {id: 'audit-verify'});
  const filters = h('form', {class: 'filters', id: 'audit-filters'},
    field('Entity', select('entity', [['', 'any'], 'organization', 'user'])),
    field('Action', select('action', [['', 'any'], 'create', 'update', 'delete', 'password_change', 'logout', 'logout_all'])),
    field('Since (RFC 3339)', h('input', {name: 'since', placeholder: '2026-01-01T00:00:00Z'})),
    h('button', {type: 'submit'}, 'Filter'));
  filters.addEventListener('submit', ev => { ev.preventDefault(); pager.reset(); load(); });
  const list = h('div', {id: 'audit-list'});
  main.append(h('h1', {}, 'Audit log'), verify, filters, list);

  try {
    const v = (await api('GET', '/audit-logs/verify')).body;
    verify.append(h('div', {class: v.ok ? 'notice ok' : 'error', id: 'audit-verify-result', 'data-ok': String(v.ok)},
      v.ok ? `Hash chain verified: ${v.checked} entries, intact.`
        : `Hash chain BROKEN at entry ${v.first_bad_seq}: ${v.problem} (${v.checked} checked).`));
  } catch (err) { verify.append(errorBox(err)); }

  async function load() {
    clear(list);
    try {
      const r = await api('GET', '/audit-logs', {query: {...formData(filters), limit: 25, cursor: pager.cursor}});
      pager.next = r.body.next_cursor;
      list.append(table([
        {title: '#', get: e => e.seq},
        {title: 'When', get: e => fmtTime(e.occurred_at)},
        {title: 'Actor', get: e => e.actor_role ? `${e.actor_role} ${(e.actor_id || '').slice(0, 8)}` : '—'},
        {title: 'Action', get: e => e.action},
        {title: 'Entity', get: e => `${e.entity} ${(e.entity_id || '').slice(0, 8)}`},
        {title: 'Changes', get: e => h('code', {class: 'changes'}, JSON.stringify(e.changes))},
      ], r.body.data, {empty: 'No entry matches.'}), pager.controls());
    } catch (err) { list.append(errorBox(err)); }
  }
  await load();
}

export async function jobsView(main) {
  const pager = new Pager(load);
  const msg = h('div', {id: 'jobs-msg'});
  const filters = h('form', {class: 'filters', id: 'job-filters'},
    field('State', select('state', [['', 'any'], 'dead', 'retryable', 'available', 'running', 'succeeded'], 'dead')),
    h('button', {type: 'submit'}, 'Show'));
  filters.addEventListener('submit', ev => { ev.preventDefault(); pager.reset(); load(); });
  const bulk = h('form', {class: 'filters', id: 'job-bulk'},
    field('Service', select('service', [['', 'all services'], ...SERVICES])),
    field('State', select('state', ['dead', 'retryable'])),
    h('button', {type: 'submit', id: 'job-retry-bulk'}, 'Retry all matching'),
    h('button', {type: 'button', id: 'job-retry-selected', class: 'secondary', onclick: retrySelected}, 'Retry selected'));
  bulk.addEventListener('submit', async ev => {
    ev.preventDefault();
    clear(msg);
    const d = formData(bulk);
    if (!d.service) delete d.service;
    try {
      const r = await api('POST', '/jobs/retry', {body: d});
      msg.append(notice(`${r.body.retried} job(s) made due again.`));
      load();
    } catch (err) { msg.append(errorBox(err)); }
  });
  const list = h('div', {id: 'job-list'});
  main.append(h('h1', {}, 'Jobs'), h('p', {class: 'muted'}, 'Dead letters are jobs the services refused or that ran out of attempts; retrying resets their attempts.'),
    filters, bulk, msg, list);

  async function retryOne(id) {
    await api('POST', '/jobs/' + id + '/retry', {body: {}});
  }

  async function retrySelected() {
    clear(msg);
    const ids = [...list.querySelectorAll('input.pick:checked')].map(c => c.value);
    if (!ids.length) { msg.append(notice('Select jobs first.')); return; }
    let ok = 0;
    for (const id of ids) {
      try { await retryOne(id); ok++; } catch (err) { msg.append(errorBox(err)); }
    }
    msg.append(notice(`${ok} of ${ids.length} job(s) retried.`));
    load();
  }

  async function load() {
    clear(list);
    try {
      const r = await api('GET', '/jobs', {query: {...formData(filters), limit: 25, cursor: pager.cursor}});
      pager.next = r.body.next_cursor;
      list.append(table([
        {title: '', get: j => j.state === 'dead' ? h('input', {type: 'checkbox', class: 'pick', value: j.id, 'aria-label': 'select job'}) : ''},
        {title: 'Service', get: j => j.service},
        {title: 'Kind', get: j => j.kind},
        {title: 'State', get: j => h('span', {class: 'badge ' + j.state}, j.state)},
        {title: 'Attempts', get: j => `${j.attempt}/${j.max_attempts}`},
        {title: 'Last error', get: j => j.last_error ? `${j.last_status ?? ''} ${j.last_error}` : '—'},
        {title: 'Updated', get: j => fmtTime(j.updated_at)},
        {title: '', get: j => j.state === 'dead' ? h('button', {type: 'button', class: 'small job-retry', dataset: {id: j.id},
          onclick: async () => {
            clear(msg);
            try { await retryOne(j.id); msg.append(notice('Job ' + j.id + ' made due again.')); load(); }
            catch (err) { msg.append(errorBox(err)); }
          }}, 'Retry') : ''},
      ], r.body.data, {rowData: j => ({id: j.id, state: j.state}), empty: 'No job in this state.'}), pager.controls());
    } catch (err) { list.append(errorBox(err)); }
  }
  await load();
}

export async function webhooksView(main) {
  const pager = new Pager(load);
  const filters = h('form', {class: 'filters', id: 'webhook-filters'},
    field('Service', select('service', [['', 'any'], ...SERVICES])),
    field('State', select('state', [['', 'any'], 'pending', 'applied', 'rejected'])),
    h('button', {type: 'submit'}, 'Filter'));
  filters.addEventListener('submit', ev => { ev.preventDefault(); pager.reset(); load(); });
  const list = h('div', {id: 'webhook-list'});
  main.append(h('h1', {}, 'Webhooks received'), filters, list);

  async function load() {
    clear(list);
    try {
      const r = await api('GET', '/webhook-events', {query: {...formData(filters), limit: 25, cursor: pager.cursor}});
      pager.next = r.body.next_cursor;
      list.append(table([
        {title: 'Received', get: e => fmtTime(e.received_at)},
        {title: 'Service', get: e => e.service},
        {title: 'Type', get: e => e.event_type},
        {title: 'Event id', get: e => h('code', {}, e.event_id)},
        {title: 'Entity', get: e => e.entity_ref || '—'},
        {title: 'Applied', get: e => e.applied_at ? fmtTime(e.applied_at) : h('span', {class: 'badge retryable'}, 'pending')},
        {title: 'Result', get: e => e.apply_result || '—'},
      ], r.body.data, {rowData: e => ({event: e.event_id}), empty: 'No event received.'}), pager.controls());
    } catch (err) { list.append(errorBox(err)); }
  }
  await load();
}
