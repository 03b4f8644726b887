// Where P1's gap goes: the CPU each layer costs per request, Gatehouse against the same-work raw
// server, from the two profiles of one `BENCH_ONLY=p1 BENCH_PROFILE=<dir>` yardstick run (the
// yardstick writes <dir>/served.json: requests each side served and when Gatehouse was ready).
//
//   BENCH_ONLY=p1 BENCH_PROFILE=/tmp/p1-prof node bench/yardstick.mjs
//   node bench/profile-budget.mjs /tmp/p1-prof
//
// Self time only (a frame's callees count in their own layer), main thread only (GC helper threads
// are outside the profile), so the totals sit below the yardstick's process CPU per request.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newestProfile } from './cpu-profile.mjs';

const dir = process.argv[2] ?? '/tmp/gatehouse-prof';
const served = JSON.parse(readFileSync(join(dir, 'served.json'), 'utf8'));

/** Packages by the layer of the request path they make up; anything unlisted is "other packages". */
const LAYERS = [
  ['mysql2 (driver)', /^(mysql2|sql-escaper|lru\.min|denque|named-placeholders|seq-queue|long|iconv-lite)$/],
  [
    'Fastify',
    /^(fastify|find-my-way|@fastify\/(?!middie).*|light-my-request|avvio|fast-json-stringify|toad-cache|fast-querystring|rfdc|fast-decode-uri-component|safe-regex2)$/,
  ],
  ['JWT verify', /^(jsonwebtoken|jws|jwa|safe-buffer|buffer-equal-constant-time|ms|semver|lodash\..*)$/],
  [
    'request log (nestjs-pino, pino-http, middie)',
    /^(pino|pino-http|pino-std-serializers|sonic-boom|nestjs-pino|@fastify\/middie|quick-format-unescaped|fast-redact|on-exit-leak-free|safe-stable-stringify|path-to-regexp|reusify)$/,
  ],
  ['Passport', /^(passport|passport-jwt|passport-strategy|@nestjs\/passport|utils-merge)$/],
  [
    'Nest (router, guards, pipes, cls)',
    /^(@nestjs\/.*|@nestjs-cls\/.*|nestjs-cls|rxjs|reflect-metadata|tslib|iterare|class-validator|class-transformer|validator|libphonenumber-js)$/,
  ],
  ['TypeORM', /^(typeorm|app-root-path|dayjs|debug)$/],
  ['metrics (prom-client)', /^(prom-client|tdigest|bintrees)$/],
];
const ASYNC_HOOKS = new Set([
  'promiseInitHook',
  'trackPromise',
  '_propagate',
  'lookupPublicResource',
  'callbackTrampoline',
]);

function layerOf({ functionName, url }) {
  if (functionName === '(idle)') return undefined;
  if (functionName === '(garbage collector)') return 'GC (main thread)';
  if (!url && /^write(Buffer|v|String|Utf8String|Latin1String)$/.test(functionName)) {
    return 'socket and stdout writes (syscalls)';
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg) return LAYERS.find(([, packages]) => packages.test(pkg))?.[0] ?? 'other packages';
  if (url.includes('/dist/src/')) return 'Gatehouse code';
  if (url.includes('/bench/')) return 'raw server code';
  if (functionName === 'Hmac' || url.startsWith('node:internal/crypto')) return 'JWT verify';
  if (ASYNC_HOOKS.has(functionName) || url.includes('async_hooks')) return 'AsyncLocalStorage (async_hooks)';
  if (url.startsWith('node:')) return 'Node (http, streams, events, timers)';
  return 'native, V8 and other';
}

/** Microseconds of self time per served request, by layer, after `skipMs` (boot) of the profile. */
function budget(profileDir, requests, skipMs) {
  const { profile } = newestProfile(profileDir);
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const layers = new Map();
  let elapsed = 0;
  profile.samples.forEach((id, index) => {
    elapsed += profile.timeDeltas[index];
    const layer = elapsed >= skipMs * 1000 ? layerOf(frames.get(id)) : undefined;
    if (layer) layers.set(layer, (layers.get(layer) ?? 0) + profile.timeDeltas[index] / requests);
  });
  return layers;
}

const ours = budget(dir, served.gatehouse.requests, served.gatehouse.readyMs);
const theirs = budget(join(dir, 'raw'), served.raw.requests, served.raw.readyMs);
const total = (layers) => [...layers.values()].reduce((sum, us) => sum + us, 0);
const rows = [...new Set([...ours.keys(), ...theirs.keys()])]
  .map((layer) => [layer, ours.get(layer) ?? 0, theirs.get(layer) ?? 0])
  .sort((a, b) => b[1] - b[2] - (a[1] - a[2]));
const us = (value) => value.toFixed(1);
process.stdout.write(
  `Main-thread CPU per request (self time), ${served.gatehouse.requests} Gatehouse and ` +
    `${served.raw.requests} raw requests:\n\n` +
    '| layer | Gatehouse µs | raw µs | Gatehouse − raw µs |\n| --- | --- | --- | --- |\n' +
    rows.map(([layer, g, r]) => `| ${layer} | ${us(g)} | ${us(r)} | ${us(g - r)} |\n`).join('') +
    `| **total** | **${us(total(ours))}** | **${us(total(theirs))}** | **${us(total(ours) - total(theirs))}** |\n`,
);
