import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A free loopback port (the built app logs APP_PUBLIC_URL, not the port it bound, so it is chosen here). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const address = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Secrets several instances of one deployment share. */
export function sharedSecrets(): Record<string, string> {
  return {
    JWT_SECRET: randomBytes(48).toString('base64'),
    MAIL_PAYLOAD_KEY: randomBytes(32).toString('base64'),
  };
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** When the process exited, in ms since it started. */
  at: number;
}

/**
 * The built app (`node dist/src/main.js`) as production runs it: its own process, NODE_ENV=production,
 * JSON logs on stdout (kept, parsed, in `lines`). For what only a real process shows: signals, exit
 * codes, several instances on one database.
 */
export class AppProcess {
  /** Every process started and not yet exited, for `killAll` when a test fails before its own stop. */
  private static readonly running = new Set<AppProcess>();
  readonly lines: Array<{ at: number; json: Record<string, unknown> }> = [];
  readonly exited: Promise<ExitResult>;
  private readonly started = Date.now();

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    private readonly scratch: string,
  ) {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (text) => {
        let json: Record<string, unknown>;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = { msg: text, notJson: true };
        }
        this.lines.push({ at: Date.now() - this.started, json });
      });
    }
    this.exited = new Promise((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal, at: Date.now() - this.started })),
    );
    AppProcess.running.add(this);
    void this.exited.then(() => AppProcess.running.delete(this));
  }

  /**
   * Kills (SIGKILL) every process a test started and did not stop: a test that fails halfway would
   * otherwise leave its app running after the run, holding a port and its database.
   */
  static async killAll(): Promise<void> {
    await Promise.all([...AppProcess.running].map((app) => app.stop('SIGKILL')));
  }

  /** Starts the app and resolves once /health/ready answers 200. */
  static async start(env: Record<string, string>, timeoutMs = 40_000): Promise<AppProcess> {
    const port = await freePort();
    const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-proc-'));
    const child = spawn(process.execPath, [join(process.cwd(), 'dist/src/main.js')], {
      cwd: scratch,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        APP_PUBLIC_URL: 'http://gatehouse.test',
        BCRYPT_COST: '10',
        LOG_LEVEL: 'info',
        DB_POOL_SIZE: '5',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const app = new AppProcess(child, `http://127.0.0.1:${port}`, scratch);
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void app.exited.then(() => (exited = true));
    while (!exited && Date.now() < deadline) {
      try {
        if ((await fetch(`${app.url}/health/ready`)).status === 200) {
          return app;
        }
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill('SIGKILL');
    throw new Error(
      `the app did not become ready: ${app.lines
        .slice(-5)
        .map((l) => JSON.stringify(l.json))
        .join('\n')}`,
    );
  }

  /** Log lines whose msg matches. */
  logged(pattern: RegExp): Array<{ at: number; json: Record<string, unknown> }> {
    return this.lines.filter((line) => pattern.test(String(line.json.msg)));
  }

  /** SIGTERM (or `signal`); resolves with how it exited. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitResult> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill(signal);
    }
    const result = await this.exited;
    rmSync(this.scratch, { recursive: true, force: true });
    return result;
  }

  /** Ms since start, on the same clock as `lines[].at`. */
  now(): number {
    return Date.now() - this.started;
  }
}
