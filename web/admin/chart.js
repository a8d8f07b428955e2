// A small SVG chart drawn from the data given: bars for calls (errors stacked in red) and a line
// for the average latency on its own scale. No library; elements made with createElementNS.
const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// points: [{minute, calls, errors, latencyMsAvg}], title: text. Returns an <svg>.
export function callsChart(points, title) {
  const W = 600, H = 220, L = 44, R = 44, T = 24, B = 28;
  const pw = W - L - R, ph = H - T - B;
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title,
    'data-points': points.length, 'data-calls': points.reduce((a, p) => a + p.calls, 0)});
  svg.append(s('title', {}, title));
  const maxCalls = niceMax(Math.max(0, ...points.map(p => p.calls)));
  const lats = points.map(p => p.latencyMsAvg).filter(v => v !== null && v !== undefined);
  const maxLat = niceMax(Math.max(0, ...lats));
  const n = Math.max(points.length, 1);
  const bw = pw / n;
  // axes and grid
  for (let i = 0; i <= 4; i++) {
    const y = T + ph - (ph * i) / 4;
    svg.append(s('line', {x1: L, x2: L + pw, y1: y, y2: y, class: 'grid'}));
    svg.append(s('text', {x: L - 6, y: y + 4, class: 'axis', 'text-anchor': 'end'}, Math.round((maxCalls * i) / 4)));
    svg.append(s('text', {x: L + pw + 6, y: y + 4, class: 'axis lat'}, Math.round((maxLat * i) / 4)));
  }
  svg.append(s('text', {x: L, y: 14, class: 'axis'}, 'calls / min'));
  svg.append(s('text', {x: L + pw, y: 14, class: 'axis lat', 'text-anchor': 'end'}, 'avg latency ms'));
  points.forEach((p, i) => {
    const x = L + i * bw + 1;
    const hc = (ph * p.calls) / maxCalls;
    const he = (ph * p.errors) / maxCalls;
    if (p.calls > 0) {
      const bar = s('rect', {x, y: T + ph - hc, width: Math.max(bw - 2, 1), height: hc, class: 'bar'});
      bar.append(s('title', {}, `${p.minute}: ${p.calls} calls, ${p.errors} errors` +
        (p.latencyMsAvg !== null ? `, avg ${p.latencyMsAvg} ms, max ${p.latencyMsMax} ms` : '')));
      svg.append(bar);
    }
    if (p.errors > 0) svg.append(s('rect', {x, y: T + ph - he, width: Math.max(bw - 2, 1), height: he, class: 'bar err'}));
  });
  const line = [];
  points.forEach((p, i) => {
    if (p.latencyMsAvg === null || p.latencyMsAvg === undefined) return;
    line.push(`${(L + i * bw + bw / 2).toFixed(1)},${(T + ph - (ph * p.latencyMsAvg) / maxLat).toFixed(1)}`);
  });
  if (line.length > 1) svg.append(s('polyline', {points: line.join(' '), class: 'lat-line'}));
  line.forEach(pt => { const [cx, cy] = pt.split(','); svg.append(s('circle', {cx, cy, r: 2.5, class: 'lat-dot'})); });
  if (points.length) {
    const hhmm = m => m.slice(11, 16);
    svg.append(s('text', {x: L, y: H - 8, class: 'axis'}, hhmm(points[0].minute)));
    svg.append(s('text', {x: L + pw, y: H - 8, class: 'axis', 'text-anchor': 'end'}, hhmm(points[points.length - 1].minute) + ' UTC'));
  }
  return svg;
}
