// DOM helpers. Text always goes in as text nodes (never innerHTML): whatever the API returns
// (names, error messages, audit changes) cannot become markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? s : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// The API's error body, shown as it came: message, code, each field, the request id.
export function errorBox(err) {
  const details = (err.details || []).map(d => h('li', {}, h('code', {}, d.field || '?'), ' ', d.message || ''));
  return h('div', {class: 'error', role: 'alert', 'data-code': err.code || 'error'},
    h('strong', {}, err.message || 'Error'),
    ' ', h('span', {class: 'muted'}, `(${err.status || '—'} ${err.code || ''})`),
    details.length ? h('ul', {}, details) : null,
    err.requestId ? h('div', {class: 'muted small'}, 'request id ', h('code', {}, err.requestId)) : null);
}

export function notice(text) { return h('div', {class: 'notice', role: 'status'}, text); }

// A labelled form field.
export function field(label, input) {
  return h('label', {class: 'field'}, h('span', {}, label), input);
}

export function select(name, options, value) {
  return h('select', {name}, options.map(o => {
    const [v, t] = Array.isArray(o) ? o : [o, o];
    return h('option', {value: v, selected: v === value ? true : null}, t);
  }));
}

// A table of rows; cols: [{title, get(row) -> node|text}]
export function table(cols, rows, opts = {}) {
  return h('div', {class: 'table-wrap'},
    h('table', {class: opts.class || ''},
      h('thead', {}, h('tr', {}, cols.map(c => h('th', {scope: 'col'}, c.title)))),
      h('tbody', {}, rows.length ? rows.map(r => h('tr', {dataset: opts.rowData ? opts.rowData(r) : {}},
        cols.map(c => h('td', {'data-label': c.title}, c.get(r))))) :
        h('tr', {}, h('td', {colspan: cols.length, class: 'muted'}, opts.empty || 'Nothing to show.')))));
}

// Cursor paging: keeps the cursors of earlier pages so that "Previous" works.
export class Pager {
  constructor(load) { this.load = load; this.stack = [null]; this.next = null; }
  get cursor() { return this.stack[this.stack.length - 1]; }
  reset() { this.stack = [null]; }
  controls() {
    return h('div', {class: 'pager'},
      h('button', {type: 'button', class: 'secondary', disabled: this.stack.length < 2 ? true : null,
        onclick: () => { this.stack.pop(); this.load(); }}, '← Previous'),
      h('span', {class: 'muted'}, `page ${this.stack.length}`),
      h('button', {type: 'button', class: 'secondary', disabled: this.next ? null : true,
        onclick: () => { this.stack.push(this.next); this.load(); }}, 'Next →'));
  }
}

export function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === 'checkbox') out[el.name] = el.checked;
    else out[el.name] = el.value;
  }
  return out;
}
