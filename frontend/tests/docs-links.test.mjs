// The README and docs/: every relative link, #anchors included, points at something that is
// there, so moving a section never strands a newcomer on a dead link.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './helpers.mjs';

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replaceAll(' ', '-');

function anchors(file) {
  const out = new Set();
  let fenced = false;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    else if (!fenced && line.startsWith('#')) out.add(slug(line.replace(/^#+/, '')));
  }
  return out;
}

const files = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

test('the README stays a newcomer\'s page: at most 350 lines', () => {
  const lines = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length;
  assert.ok(lines <= 351, `README.md has ${lines} lines`);
});

for (const file of files) {
  test(`every relative link of ${file} resolves`, () => {
    const full = path.join(ROOT, file);
    const broken = [];
    for (const [, target] of readFileSync(full, 'utf8').matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target)) continue;
      const [rel, fragment] = target.split('#');
      const dest = rel ? path.resolve(path.dirname(full), rel) : full;
      if (!existsSync(dest)) broken.push(`${target}: no such file`);
      else if (fragment && dest.endsWith('.md') && !anchors(dest).has(fragment)) broken.push(`${target}: no such heading`);
    }
    assert.deepEqual(broken, []);
  });
}
