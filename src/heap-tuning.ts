import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags for the serving process, set by main.ts before the app is loaded. Node accepts only a few
 * V8 flags in NODE_OPTIONS, and a flag in the image's CMD would be lost to anyone who runs
 * `node dist/src/main.js` or `npm start`, so the flag is set here, unless the command line names it
 * (`node --allocation-site-pretenuring dist/src/main.js`, in any spelling V8 accepts), which wins.
 *
 * Allocation-site pretenuring off. V8 watches which allocation sites' objects survive a scavenge and,
 * past a threshold, allocates everything from that site straight in the old generation. Under load, a
 * request in flight is still waiting on the database or the socket when a scavenge runs, so the sites
 * of mysql2's rows, fields and dates and of Node's response headers were tenured: on Node 24, 27.6 KB
 * of every GET /api/v1/todos (15.3 KB of /users/me) went straight to the old generation, where only a
 * full mark-compact of a ~70 MB heap frees it; without pretenuring, 2–3 KB. CPU per request fell by
 * 18–32% on Node 20 and 24, p99 by more than half (bench/results/2026-12-06-pretenuring.md).
 *
 * Node's documentation warns that changing V8 flags after start-up may behave unpredictably. This one
 * is read when a collection processes the pretenuring feedback, so it takes effect from the next
 * scavenge; heap-tuning.spec checks that on V8's own trace of its decisions, on each Node CI runs.
 */
const PRETENURING_NAMED = /^--?(no[-_]?)?allocation[-_]site[-_]pretenuring(=|$)/;

if (!process.execArgv.some((arg) => PRETENURING_NAMED.test(arg))) {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
