// Bytes allocated per request, by the function that allocated them, from alloc-sampler.mjs's output:
// the total and the top frames as a Markdown table.
//
//   node bench/alloc-top.mjs /tmp/allocs.json [count, default 25]
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '/tmp/allocs.json';
const count = Number(process.argv[3] ?? 25);
const { requests, profile } = JSON.parse(readFileSync(file, 'utf8'));

const bytes = new Map();
let total = 0;
const pending = [profile.head];
while (pending.length > 0) {
  const node = pending.pop();
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url.replace(/.*node_modules\//, '').replace(/.*dist\/src\//, 'src/');
  const frame = `\`${functionName || '(anonymous)'} ${where}:${lineNumber + 1}\``;
  bytes.set(frame, (bytes.get(frame) ?? 0) + node.selfSize);
  total += node.selfSize;
  pending.push(...(node.children ?? []));
}

const kb = (value) => (value / requests / 1024).toFixed(2);
console.log(`${kb(total)} KB allocated per request over ${requests} requests\n`);
console.log('| KB per request | allocated in |\n| --- | --- |');
for (const [frame, size] of [...bytes].sort((a, b) => b[1] - a[1]).slice(0, count)) {
  console.log(`| ${kb(size)} | ${frame} |`);
}
