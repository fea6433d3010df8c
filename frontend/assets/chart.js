// Usage chart: stacked bars (ok / error / denied) per bucket, drawn as inline SVG.

import { h, svg } from './dom.js';

const W = 640;
const H = 200;
const PAD = { top: 12, right: 8, bottom: 28, left: 40 };
const SERIES = [
  { key: 'ok', label: 'Succeeded', cls: 'bar-ok' },
  { key: 'error', label: 'Errors', cls: 'bar-error' },
  { key: 'denied', label: 'Denied (401/403/429)', cls: 'bar-denied' },
];

function niceMax(n) {
  if (n <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/** The chart for a usage report's `series`; `hourly` picks the axis labels. */
export function usageChart(series, { hourly, title }) {
  const max = niceMax(Math.max(0, ...series.map((b) => b.requests)));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const step = innerW / Math.max(series.length, 1);
  const barW = Math.max(1, step * 0.75);
  const y = (v) => PAD.top + innerH - (v / max) * innerH;
  const total = series.reduce((s, b) => s + b.requests, 0);
  const desc = `${total} requests in ${series.length} ${hourly ? 'hours' : 'days'}; at most ${Math.max(0, ...series.map((b) => b.requests))} in one ${hourly ? 'hour' : 'day'}.`;
  const titleId = `chart-title-${Math.random().toString(36).slice(2)}`;
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    class: 'chart',
    role: 'img',
    'aria-labelledby': titleId,
  });
  root.append(svg('title', { id: titleId }, `${title}: ${desc}`));
  for (const t of [0, 0.5, 1]) {
    const v = max * t;
    root.append(
      svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, String(Math.round(v))),
    );
  }
  const labelEvery = Math.max(1, Math.ceil(series.length / 8));
  series.forEach((b, i) => {
    const x = PAD.left + i * step + (step - barW) / 2;
    const when = new Date(b.start);
    const label = hourly
      ? when.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
      : when.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
    const g = svg('g', { class: 'bucket' });
    g.append(svg('title', {}, `${label}: ${b.requests} requests (${b.ok} ok, ${b.error} errors, ${b.denied} denied)`));
    let base = 0;
    for (const s of SERIES) {
      const v = b[s.key] || 0;
      if (v > 0) {
        g.append(svg('rect', { x, width: barW, y: y(base + v), height: y(base) - y(base + v), class: s.cls }));
      }
      base += v;
    }
    root.append(g);
    if (i % labelEvery === 0) {
      const cx = x + barW / 2;
      const anchor = cx < PAD.left + 30 ? 'start' : cx > W - PAD.right - 30 ? 'end' : 'middle';
      root.append(svg('text', { x: cx, y: H - 8, class: 'axis', 'text-anchor': anchor }, label));
    }
  });
  const legend = h('ul', { class: 'legend' },
    SERIES.map((s) => h('li', {}, h('span', { class: `swatch ${s.cls}`, 'aria-hidden': 'true' }), s.label)));
  return h('figure', { class: 'chart-figure' }, root, h('figcaption', {}, desc), legend);
}
