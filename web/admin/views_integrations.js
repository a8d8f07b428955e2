// Integrations: per service its status, circuit, queue counts, and a chart of the last hour's
// calls and latency (GET /integrations/status and GET /integrations/calls).
import {api} from './api.js';
import {h, clear, errorBox, fmtTime} from './dom.js';
import {callsChart} from './chart.js';

const NAMES = {userService: 'User service', paymentService: 'Payment service', communicationService: 'Communication service'};

export async function integrationsView(main) {
  const body = h('div', {id: 'integrations'});
  main.append(h('h1', {}, 'Integrations'),
    h('div', {class: 'toolbar'}, h('button', {type: 'button', id: 'integrations-refresh', onclick: load}, 'Refresh')),
    body);

  async function load() {
    clear(body);
    let status, calls;
    try {
      [status, calls] = await Promise.all([api('GET', '/integrations/status'), api('GET', '/integrations/calls')]);
    } catch (err) { body.append(errorBox(err)); return; }
    for (const key of Object.keys(NAMES)) {
      const st = status.body[key];
      const pts = calls.body.services[key] || [];
      const total = pts.reduce((a, p) => a + p.calls, 0);
      const errs = pts.reduce((a, p) => a + p.errors, 0);
      body.append(h('section', {class: 'card service', id: 'svc-' + key},
        h('h2', {}, NAMES[key], ' ', h('span', {class: 'badge ' + (st ? st.status.toLowerCase() : 'down')}, st ? st.status : '?')),
        st ? h('dl', {class: 'facts'},
          h('dt', {}, 'Circuit'), h('dd', {class: 'circuit'}, st.circuit),
          h('dt', {}, 'Queued'), h('dd', {}, st.queued),
          h('dt', {}, 'Retrying'), h('dd', {}, st.retrying),
          h('dt', {}, 'Dead'), h('dd', {}, st.dead),
          h('dt', {}, 'Latency'), h('dd', {}, `p50 ${st.latencyMs.p50} ms · p95 ${st.latencyMs.p95} ms`),
          h('dt', {}, 'Last sync'), h('dd', {}, fmtTime(st.lastSync)),
          h('dt', {}, 'Last error'), h('dd', {}, st.lastError || '—')) : null,
        h('p', {class: 'muted small'}, `Last hour: ${total} calls, ${errs} errors (platform-wide).`),
        callsChart(pts, `${NAMES[key]}: calls and average latency per minute, last hour`)));
    }
  }
  await load();
}
