// The login yardstick's raw side (P2): `bcrypt.compare` of the same pre-hashed password against the
// same cost-12 hash, PARALLELISM at once, for DURATION seconds, in its own process with the same
// UV_THREADPOOL_SIZE as the app. Prints `{"compares": n, "seconds": s}`.
//
//   HASH=… PREHASHED=… PARALLELISM=1 DURATION=10 node bench/raw-bcrypt.mjs
import bcrypt from 'bcrypt';

const { HASH, PREHASHED } = process.env;
const parallelism = Number(process.env.PARALLELISM ?? 1);
const seconds = Number(process.env.DURATION ?? 10);
const until = performance.now() + seconds * 1000;
let compares = 0;
await Promise.all(
  Array.from({ length: parallelism }, async () => {
    while (performance.now() < until) {
      if (!(await bcrypt.compare(PREHASHED, HASH))) {
        throw new Error('the raw compare must succeed, as a correct login does');
      }
      compares += 1;
    }
  }),
);
process.stdout.write(`${JSON.stringify({ compares, seconds })}\n`);
