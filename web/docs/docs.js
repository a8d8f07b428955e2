// The API reference, rendered in the browser from /openapi.json of this origin. Text goes in as
// text; the descriptions' **bold** and `code` become <strong> and <code> elements, nothing else.
const doc = document.getElementById('doc');
const toc = document.getElementById('toc');

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function rich(text) {
  const out = [];
  const re = /(\*\*[^*]+\*\*|`[^`]+`)/g;
  let last = 0, m;
  while ((m = re.exec(text || '')) !== null) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(m[0].startsWith('**') ? h('strong', {}, m[0].slice(2, -2)) : h('code', {}, m[0].slice(1, -1)));
    last = m.index + m[0].length;
  }
  if (last < (text || '').length) out.push(text.slice(last));
  return out;
}

function resolve(api, obj) {
  let o = obj, guard = 0;
  while (o && o.$ref && guard++ < 10) {
    const parts = o.$ref.replace(/^#\//, '').split('/');
    o = parts.reduce((a, p) => (a ? a[p] : undefined), api);
  }
  return o || {};
}

function typeOf(schema) {
  if (!schema) return '';
  if (schema.$ref) return schema.$ref.split('/').pop();
  if (schema.enum) return schema.enum.map(v => JSON.stringify(v)).join(' | ');
  const t = Array.isArray(schema.type) ? schema.type.join(' | ') : (schema.type || 'any');
  if (t === 'array' && schema.items) return typeOf(schema.items) + '[]';
  return t + (schema.format ? ` (${schema.format})` : '');
}

function schemaLink(schema) {
  const name = schema && schema.$ref ? schema.$ref.split('/').pop() : null;
  return name ? h('a', {href: '#schema-' + name}, name) : h('code', {}, typeOf(schema));
}

function schemaTable(api, schema) {
  const s = resolve(api, schema);
  if (!s.properties) return h('p', {}, h('code', {}, typeOf(schema)));
  const req = new Set(s.required || []);
  return h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'field'), h('th', {}, 'type'), h('th', {}, 'notes'))),
    h('tbody', {}, Object.entries(s.properties).map(([k, v]) => h('tr', {},
      h('td', {}, h('code', {}, k), req.has(k) ? ' *' : ''),
      h('td', {}, v.$ref || (v.items && v.items.$ref) ? schemaLink(v.$ref ? v : v.items) : h('code', {}, typeOf(v))),
      h('td', {}, rich(v.description || ''))))));
}

function operation(api, path, method, op) {
  const id = 'op-' + (op.operationId || method + path.replace(/[^a-z0-9]+/gi, '-'));
  const params = (op.parameters || []).map(p => resolve(api, p));
  const rb = op.requestBody ? resolve(api, op.requestBody) : null;
  const rbSchema = rb && rb.content && rb.content['application/json'] ? rb.content['application/json'].schema : null;
  return h('section', {class: 'op', id},
    h('h3', {}, h('span', {class: 'method ' + method}, method.toUpperCase()), ' ', h('code', {}, path), ' ', h('span', {class: 'summary'}, op.summary || '')),
    op.description ? h('p', {}, rich(op.description)) : null,
    params.length ? [h('h4', {}, 'Parameters'), h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'in'), h('th', {}, 'type'), h('th', {}, 'description'))),
      h('tbody', {}, params.map(p => h('tr', {}, h('td', {}, h('code', {}, p.name), p.required ? ' *' : ''),
        h('td', {}, p.in), h('td', {}, h('code', {}, typeOf(p.schema))), h('td', {}, rich(p.description || ''))))))] : null,
    rbSchema ? [h('h4', {}, 'Body ', schemaLink(rbSchema)), schemaTable(api, rbSchema)] : null,
    h('h4', {}, 'Responses'),
    h('ul', {class: 'responses'}, Object.entries(op.responses || {}).map(([code, r]) => {
      const rr = resolve(api, r);
      const sch = rr.content && rr.content['application/json'] ? rr.content['application/json'].schema : null;
      return h('li', {}, h('span', {class: 'status s' + code[0]}, code), ' ', rich(rr.description || ''), sch ? [' — ', schemaLink(sch)] : null);
    })));
}

async function main() {
  let api;
  try {
    const r = await fetch('/openapi.json', {cache: 'no-cache'});
    if (!r.ok) throw new Error('GET /openapi.json answered ' + r.status);
    api = await r.json();
  } catch (err) {
    doc.textContent = '';
    doc.append(h('div', {class: 'error', role: 'alert'}, 'Cannot load the API description: ' + err.message));
    return;
  }
  doc.textContent = '';
  document.title = (api.info && api.info.title ? api.info.title : 'API') + ' ' + (api.info ? api.info.version : '');
  doc.append(h('h1', {}, api.info.title, ' ', h('small', {}, api.info.version)),
    h('p', {}, rich(api.info.description || '')));
  const groups = new Map();
  for (const [path, item] of Object.entries(api.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!['get', 'post', 'put', 'patch', 'delete', 'head', 'options'].includes(method)) continue;
      const tag = (op.tags && op.tags[0]) || 'other';
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push([path, method, op]);
    }
  }
  for (const [tag, ops] of groups) {
    toc.append(h('h2', {}, tag));
    const ul = h('ul', {});
    const sec = h('section', {class: 'tag', id: 'tag-' + tag}, h('h2', {}, tag));
    for (const [path, method, op] of ops) {
      const node = operation(api, path, method, op);
      sec.append(node);
      ul.append(h('li', {}, h('a', {href: '#' + node.id}, h('span', {class: 'method ' + method}, method.toUpperCase()), ' ', path)));
    }
    toc.append(ul);
    doc.append(sec);
  }
  const schemas = (api.components && api.components.schemas) || {};
  const ss = h('section', {class: 'tag', id: 'schemas'}, h('h2', {}, 'Schemas'));
  for (const [name, schema] of Object.entries(schemas)) {
    ss.append(h('section', {class: 'schema', id: 'schema-' + name}, h('h3', {}, name),
      schema.description ? h('p', {}, rich(schema.description)) : null, schemaTable(api, schema)));
  }
  doc.append(ss);
  toc.append(h('h2', {}, h('a', {href: '#schemas'}, 'Schemas')));
  if (location.hash) { const t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
}

main();
