// The top self-time frames of the newest V8 CPU profile in a directory (from --cpu-prof), as shares of
// the busy time (idle excluded), grouped by function and by package, as Markdown tables.
//
//   node bench/profile-top.mjs /tmp/gatehouse-prof [count] [skip seconds: boot and seeding, default 0]
import { newestProfile } from './cpu-profile.mjs';

const dir = process.argv[2] ?? '/tmp/gatehouse-prof';
const count = Number(process.argv[3] ?? 15);
const skipMicros = Number(process.argv[4] ?? 0) * 1e6;
const { file: newest, profile } = newestProfile(dir);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfTicks = new Map();
let elapsed = 0;
profile.samples.forEach((id, index) => {
  elapsed += profile.timeDeltas[index];
  if (elapsed >= skipMicros) {
    selfTicks.set(id, (selfTicks.get(id) ?? 0) + 1);
  }
});

/** node_modules/<package> (scoped included), dist/src/<folder> for the app, or the frame's kind. */
function packageOf(url, functionName) {
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (module) return module[1];
  const app = /dist\/src\/([^/]+)/.exec(url);
  if (app) return `app: ${app[1]}`;
  if (url.startsWith('node:')) return 'node internals';
  return functionName.startsWith('(') ? functionName : `native: ${functionName}`;
}

const frames = new Map();
const packages = new Map();
let busy = 0;
for (const [id, ticks] of selfTicks) {
  const { functionName, url, lineNumber } = byId.get(id).callFrame;
  if (functionName === '(idle)') continue;
  const file = url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '');
  const key = `${functionName || '(anonymous)'} ${file}:${lineNumber + 1}`;
  frames.set(key, (frames.get(key) ?? 0) + ticks);
  const pkg = packageOf(url, functionName || '(anonymous)');
  packages.set(pkg, (packages.get(pkg) ?? 0) + ticks);
  busy += ticks;
}
const table = (title, map) => {
  process.stdout.write(`\n| self % of busy | ${title} |\n| --- | --- |\n`);
  for (const [key, ticks] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    process.stdout.write(`| ${((ticks / busy) * 100).toFixed(1)} | \`${key}\` |\n`);
  }
};
process.stdout.write(`${newest}: ${profile.samples.length} samples, ${busy} busy\n`);
table('frame', frames);
table('package', packages);
