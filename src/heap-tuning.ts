import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags for the serving process, set by main.ts before the app is loaded. Node accepts only a few
 * V8 flags in NODE_OPTIONS, and a flag in the image's CMD would be lost to anyone who runs
 * `node dist/src/main.js` or `npm start`, so they are set here. A flag named on the command line
 * (`node --allocation-site-pretenuring dist/src/main.js`, either sign) wins over this list.
 *
 * Allocation-site pretenuring off. V8 watches which allocation sites' objects survive a scavenge and,
 * past a threshold, allocates everything from that site straight in the old generation. Under load, a
 * request in flight is still waiting on the database or the socket when a scavenge runs, so the sites
 * of mysql2's rows, fields and dates and of Node's response headers were tenured: 27.6 KB of every
 * GET /api/v1/todos (15.3 KB of /users/me) went straight to the old generation, where only a full
 * mark-compact of a ~70 MB heap frees it. Without pretenuring, 2–3 KB of a request outlives the young
 * generation, and CPU per request fell by 18–32% on Node 20 and 24, p99 by half
 * (bench/results/2026-12-06-pretenuring.md). V8 reads the flag at each collection, so setting it at
 * run time takes effect (heap-tuning.spec watches V8's own trace of its decisions).
 */
const SERVING_V8_FLAGS: readonly string[] = ['--no-allocation-site-pretenuring'];

/** `--no-foo_bar` and `--foo-bar` name the same flag. */
const flagName = (arg: string) =>
  arg
    .split('=')[0]
    .replace(/^--(no-)?/, '')
    .replaceAll('_', '-');

const named = new Set(process.execArgv.map(flagName));
for (const flag of SERVING_V8_FLAGS) {
  if (!named.has(flagName(flag))) {
    setFlagsFromString(flag);
  }
}
