import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createThrowawayDatabase, type ThrowawayDatabase, usingMysql } from './support/database.js';

/**
 * Issue 12, item 8 ("Bounded by design": files under var/ are 0600). The built app in development
 * mode with nothing configured, as `npm start` runs it: the SQLite database, the generated secrets and
 * the mailed .eml files it creates under var/ are readable by their owner only.
 */

const MAIN = join(process.cwd(), 'dist/src/main.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error('timed out');
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const modeOf = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe('files under var/', () => {
  let cwd: string;
  let app: ChildProcess;
  let output = '';
  // On MySQL (where CI's Node 24 run cannot load SQLite's driver) the database is not a file.
  let database: ThrowawayDatabase | undefined;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'gatehouse-var-'));
    const port = await freePort();
    database = usingMysql() ? await createThrowawayDatabase() : undefined;
    app = spawn(process.execPath, [MAIN], {
      cwd,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'development',
        HOST: '127.0.0.1',
        PORT: String(port),
        MAIL_POLL_INTERVAL: '100ms',
        LOG_LEVEL: 'warn',
        ...(database ? { DATABASE_URL: database.url } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    app.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    app.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const base = `http://127.0.0.1:${port}`;
    // Generous: a first boot creates the database and hashes at cost 12, on a machine CI may share.
    await until(async () => ((await fetch(`${base}/health/live`)).ok ? true : undefined), 45_000).catch(
      (error: Error) => {
        throw new Error(`${error.message} waiting for the app; it printed:\n${output}`);
      },
    );
    const registered = await fetch(`${base}/api/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'var-files@example.com', password: 'violet kettle drifts at noon' }),
    });
    expect(registered.status).toBe(202);
    await until(() => {
      const mails = readdirSync(join(cwd, 'var/mail')).filter((name) => name.endsWith('.eml'));
      return mails.length > 0 ? mails : undefined;
    });
  }, 30_000);

  afterAll(async () => {
    if (app.exitCode === null) {
      const exited = new Promise((resolve) => app.once('exit', resolve));
      app.kill('SIGTERM');
      await exited;
    }
    rmSync(cwd, { recursive: true, force: true });
    await database?.drop();
  });

  it('creates the database, the generated secrets and the mail files 0600, their directories 0700', () => {
    const files = [
      ...(database ? [] : ['var/gatehouse.sqlite']),
      'var/jwt-secret',
      'var/mail-payload-key',
      ...readdirSync(join(cwd, 'var/mail')).map((name) => `var/mail/${name}`),
      ...readdirSync(join(cwd, 'var'))
        .filter((name) => /\.sqlite-(wal|shm)$/.test(name))
        .map((name) => `var/${name}`),
    ];
    expect(files.filter((f) => f.endsWith('.eml'))).not.toHaveLength(0);
    expect(Object.fromEntries(files.map((f) => [f, modeOf(join(cwd, f))]))).toEqual(
      Object.fromEntries(files.map((f) => [f, '600'])),
    );
    expect(modeOf(join(cwd, 'var'))).toBe('700');
    expect(modeOf(join(cwd, 'var/mail'))).toBe('700');
    expect(output).not.toMatch(/Unhandled error/);
  });
});
