// Tiny DOM helpers: every piece of text goes in through textContent, never innerHTML.

/**
 * Creates an element. `attrs`: attributes, plus `on*` listeners, `class`, `dataset`,
 * and boolean attributes given as true/false. Children: nodes, strings, arrays, null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = tag.includes(':')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.split(':')[1])
    : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

/** `svg('rect', {...})`: an SVG element. */
export const svg = (tag, attrs, ...children) => h(`svg:${tag}`, attrs, ...children);

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Announces `message` to screen readers. */
export function announce(message) {
  const live = document.getElementById('live');
  if (live) {
    live.textContent = '';
    setTimeout(() => { live.textContent = message; }, 30);
  }
}

let uid = 0;
/** A unique id for label/aria wiring. */
export const newId = (prefix) => `${prefix}-${++uid}`;

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

/** A `<time>` element, or a dash. */
export function time(iso, { withTime = true } = {}) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, (withTime ? dateTime : dateOnly).format(d));
}

export const formatDate = (d) => dateOnly.format(d);

/** A last use: "never", "just now" within a minute (the exact instant in its title), else the time. */
export function lastUsed(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const d = new Date(iso);
  if (Date.now() - d.getTime() < 60_000) return h('time', { datetime: d.toISOString(), title: d.toISOString() }, 'just now');
  return time(iso);
}
