// P5 of the yardstick: how long until Gatehouse answers /health/ready 200.
//  - "built app": `node dist/src/main.js` on SQLite (development defaults), on an empty database (the
//    migrations run) and again on the migrated one;
//  - "npm start": a fresh `git clone` of HEAD with node_modules linked (what `npm ci` would give), so
//    the time includes the build that `npm start` runs first.
// Each is the median of BENCH_STARTS runs (default 3; 1 with BENCH_SMOKE=1).
//
//   npm run build && node bench/startup.mjs         # or through bench/yardstick.mjs
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const PORT = 3930;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Milliseconds from spawning `command` until /health/ready answers 200; the process is then stopped. */
async function timeToReady(command, args, { cwd, dir }) {
  const started = performance.now();
  const child = spawn(command, args, {
    cwd,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(PORT),
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${dir}/gatehouse.sqlite`,
      MAIL_DIR: `${dir}/mail`,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
    detached: true,
  });
  let exit;
  const exited = new Promise((done) =>
    child.once('exit', (code, signal) => {
      exit = signal ?? `code ${code}`;
      done();
    }),
  );
  try {
    for (;;) {
      if (exit !== undefined) {
        // Its stderr (inherited) says why: a native addon this Node cannot load, say.
        throw new Error(`${command} ${args.join(' ')} exited (${exit}) before it was ready`);
      }
      if (performance.now() - started > 120_000) {
        throw new Error(`${command} ${args.join(' ')} was not ready within 120 s`);
      }
      try {
        if ((await fetch(`http://127.0.0.1:${PORT}/health/ready`)).status === 200) {
          return performance.now() - started;
        }
      } catch {
        // not listening yet
      }
      await new Promise((done) => setTimeout(done, 20));
    }
  } finally {
    try {
      process.kill(-child.pid, 'SIGTERM'); // npm start runs node as a grandchild: stop the whole group
    } catch (error) {
      if (error.code !== 'ESRCH') {
        throw error; // ESRCH: the group has already gone
      }
    }
    await exited;
    await portFree();
  }
}

/** Until nothing answers on PORT: the next start must not find the previous app still draining. */
async function portFree() {
  for (let i = 0; i < 300; i += 1) {
    try {
      await fetch(`http://127.0.0.1:${PORT}/health/live`);
    } catch {
      return;
    }
    await new Promise((done) => setTimeout(done, 50));
  }
  throw new Error(`something still answers on port ${PORT}`);
}

export async function measureStartup({ runs = 3, clone = true, log = () => undefined } = {}) {
  const repo = resolve('.');
  const emptyDb = [];
  const migratedDb = [];
  for (let i = 0; i < runs; i += 1) {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-start-'));
    try {
      emptyDb.push(await timeToReady(process.execPath, [join(repo, 'dist/src/main.js')], { cwd: dir, dir }));
      migratedDb.push(
        await timeToReady(process.execPath, [join(repo, 'dist/src/main.js')], { cwd: dir, dir }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  log(
    `  built app ready: ${emptyDb.map(Math.round).join(', ')} ms (empty db), ${migratedDb.map(Math.round).join(', ')} ms (migrated)`,
  );
  const npmStart = [];
  for (let i = 0; clone && i < runs; i += 1) {
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-clone-'));
    try {
      const clone = join(dir, 'gatehouse');
      execFileSync('git', ['clone', '--quiet', repo, clone]);
      symlinkSync(join(repo, 'node_modules'), join(clone, 'node_modules'));
      npmStart.push(await timeToReady('npm', ['start', '--silent'], { cwd: clone, dir }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (clone) {
    log(`  npm start on a fresh clone ready: ${npmStart.map(Math.round).join(', ')} ms`);
  }
  return {
    emptyDb: median(emptyDb),
    migratedDb: median(migratedDb),
    npmStart: clone ? median(npmStart) : undefined,
    runs,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const runs = process.env.BENCH_SMOKE === '1' ? 1 : Number(process.env.BENCH_STARTS ?? 3);
  const result = await measureStartup({ runs, log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
