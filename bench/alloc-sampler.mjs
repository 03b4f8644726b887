// Where a server's garbage comes from, per request: preloaded into it (`node --import`), this samples every
// allocation, collected ones included (V8's sampling heap profiler with includeObjectsCollectedBy*GC),
// while ALLOC_COUNT HTTP requests are served after ALLOC_SKIP of warm-up, and writes
// { requests, profile } to ALLOC_OUT for alloc-top.mjs. A heap snapshot cannot show this: what a
// request allocates is mostly dead by the time one is taken.
//
//   ALLOC_OUT=/tmp/allocs.json AB_ROUNDS=1 AB_ROUTES=/api/v1/todos \
//     AB_A='--max-semi-space-size=8 --max-old-space-size=160 --import ./bench/alloc-sampler.mjs' node bench/ab.mjs
//   node bench/alloc-top.mjs /tmp/allocs.json
//
// Add --no-turbo-inlining --no-maglev-inlining to AB_A to charge each allocation to the function that
// makes it rather than to the one it was inlined into (the total barely moves).
import channel from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const skip = Number(process.env.ALLOC_SKIP ?? 6000);
const count = Number(process.env.ALLOC_COUNT ?? 10000);
const out = process.env.ALLOC_OUT ?? `/tmp/allocs-${process.pid}.json`;
const session = new Session();
session.connect();
let served = 0;

channel.subscribe('http.server.request.start', () => {
  served += 1;
  if (served === skip) {
    session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  } else if (served === skip + count) {
    session.post('HeapProfiler.stopSampling', (error, result) => {
      if (error) {
        process.stderr.write(`alloc-sampler: ${error.message}\n`);
        return;
      }
      writeFileSync(out, JSON.stringify({ requests: count, profile: result.profile }));
      process.stderr.write(`alloc-sampler: ${count} requests sampled, written to ${out}\n`);
    });
  }
});
