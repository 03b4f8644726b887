import http from 'node:http';
import mysql from 'mysql2/promise';
import { AppProcess, sharedSecrets } from './support/app-process.js';
import { createThrowawayDatabase, type ThrowawayDatabase, usingMysql } from './support/database.js';
import { uniqueEmail } from './support/factories.js';
import { recipientsOf, SmtpCapture } from './support/smtp-capture.js';

type Outcome = { startedAt: number; endedAt: number; what?: string } & (
  | { kind: 'complete'; status: number }
  | { kind: 'refused' | 'reset-before-response' | 'reset-mid-body'; error: string }
);

/**
 * One request over node:http, classified by how it ended: a complete answer (status line, headers and
 * exactly Content-Length bytes of body), a refused connection, or a reset before or during the answer.
 */
function classify(
  url: string,
  path: string,
  agent: http.Agent | false,
  body?: unknown,
  clock: () => number = Date.now,
): Promise<Outcome> {
  const startedAt = clock();
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      `${url}${path}`,
      {
        method: payload ? 'POST' : 'GET',
        agent,
        headers: payload ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let received = 0;
        res.on('data', (chunk: Buffer) => (received += chunk.length));
        res.on('end', () => {
          const expected = Number(res.headers['content-length'] ?? received);
          resolve(
            received === expected && res.complete
              ? { kind: 'complete', status: res.statusCode ?? 0, startedAt, endedAt: clock() }
              : {
                  kind: 'reset-mid-body',
                  error: `${received}/${expected} bytes`,
                  startedAt,
                  endedAt: clock(),
                },
          );
        });
        res.on('error', (error) =>
          resolve({ kind: 'reset-mid-body', error: error.message, startedAt, endedAt: clock() }),
        );
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({
        kind: error.code === 'ECONNREFUSED' ? 'refused' : 'reset-before-response',
        error: error.code ?? error.message,
        startedAt,
        endedAt: clock(),
      }),
    );
    req.end(payload);
  });
}

// A real process and a real signal; MySQL so that a second instance can finish the mail on the same
// database (SQLite is one process's file).
const onMysql = usingMysql() ? describe : describe.skip;
onMysql('graceful shutdown (the built app, production mode, SIGTERM)', () => {
  let database: ThrowawayDatabase;
  let capture: SmtpCapture;

  beforeAll(async () => {
    database = await createThrowawayDatabase();
    capture = await SmtpCapture.start();
  });

  afterAll(async () => {
    await capture.stop();
    await database.drop();
  });

  it('refuses new connections, answers every request in flight, releases unsent mail, and a second instance sends each mail exactly once', async () => {
    const env = {
      ...sharedSecrets(),
      DATABASE_URL: database.url,
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '100ms',
      SHUTDOWN_GRACE: '5s',
      AUTH_THROTTLE_IP_LIMIT: '100000',
    };
    const t0 = Date.now();
    const phase: string[] = [];
    const mark = (name: string) => phase.push(`${name} ${Date.now() - t0}`);
    const first = await AppProcess.start(env);
    mark('booted');
    // A slow SMTP server (each reply 150 ms late): the outbox drain is still running at SIGTERM.
    capture.setReplyDelay(150);
    // The burst: 6 clients in a loop until the process is gone, half on kept-alive connections (as a
    // balancer holds them), half on a new connection each; a large body (the OpenAPI document), a slow
    // one (a login spends a bcrypt comparison) and the cheapest route.
    const outcomes: Outcome[] = [];
    let exited = false;
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 3 });
    const clients = Array.from({ length: 6 }, async (_, c) => {
      for (let i = 0; !exited; i++) {
        const kind = (c + i) % 3;
        const outcome = await classify(
          first.url,
          kind === 0 ? '/docs/openapi.json' : kind === 1 ? '/api/v1/auth/login' : '/health/live',
          c % 2 === 0 ? keepAlive : false,
          kind === 1 ? { email: uniqueEmail('burst'), password: 'not the right one at all' } : undefined,
          () => first.now(),
        );
        outcomes.push({
          ...outcome,
          what: `client ${c} (${c % 2 === 0 ? 'kept alive' : 'new connection'}), route ${kind}`,
        });
        if (outcome.kind === 'refused') {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    });
    const MAILS = 15;
    const emails = Array.from({ length: MAILS }, (_, i) => uniqueEmail(`drain${i}`));
    const db = await mysql.createConnection({ uri: database.url });
    const registered = await Promise.all(
      emails.map((email) =>
        fetch(`${first.url}/api/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email, password: 'violet kettle drifts at noon' }),
        }).then((res) => res.status),
      ),
    );
    expect(registered).toEqual(Array(MAILS).fill(202));
    mark('registered');
    // SIGTERM while the worker holds more claimed rows than it sends at once (5): some are being sent,
    // at least one is not started yet.
    const claimed = async () => {
      const [[row]] = await db.query<mysql.RowDataPacket[]>(
        "SELECT COUNT(*) AS n FROM mail_outbox WHERE status = 'pending' AND locked_by IS NOT NULL",
      );
      return Number(row.n);
    };
    for (const deadline = Date.now() + 15_000; (await claimed()) < 6;) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    mark('claimed');
    const sigtermAt = first.now();
    const exit = await first.stop('SIGTERM');
    exited = true;
    await Promise.all(clients);
    keepAlive.destroy();

    // Exit 0 (the shutdown hooks ran and the logs were flushed), well within the grace.
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    const after = outcomes.filter((o) => o.endedAt >= sigtermAt);
    // Never a reset during an answer, nor on a kept-alive connection (a request on one is answered in
    // full, with Connection: close). A new connection still in the kernel's accept queue when the
    // listener closes is reset before the app ever reads it: that is a refusal in all but the errno
    // (the request was not seen; safe to retry), so it counts as one, and only after the signal.
    const midBody = outcomes.filter((o) => o.kind === 'reset-mid-body');
    const resets = outcomes.filter((o) => o.kind === 'reset-before-response');
    expect(midBody).toEqual([]);
    expect(resets.filter((o) => o.what?.includes('kept alive'))).toEqual([]);
    expect(resets.filter((o) => o.endedAt < sigtermAt)).toEqual([]);
    expect(outcomes.filter((o) => o.kind === 'complete' && o.status >= 500)).toEqual([]);
    const refused = after.filter((o) => o.kind === 'refused' || o.kind === 'reset-before-response');
    expect(refused.length).toBeGreaterThan(0);
    // Requests started before the signal and still running at it got their answer.
    const inFlight = outcomes.filter((o) => o.startedAt < sigtermAt && o.endedAt > sigtermAt);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.every((o) => o.kind === 'complete')).toBe(true);
    // The listener closed at once: refused while the process was still finishing its work.
    const firstRefusal = Math.min(...refused.map((o) => o.endedAt)) - sigtermAt;
    const lastAnswer =
      Math.max(...after.filter((o) => o.kind === 'complete').map((o) => o.endedAt)) - sigtermAt;
    expect(firstRefusal).toBeLessThan(exit.at - sigtermAt);
    const stopping = first.logged(/^Stopping: new connections are refused/);
    const httpClosed = first.logged(/^HTTP server closed after \d+ ms: every request answered/);
    const stopped = first.logged(/^Stopped \d+ ms after SIGTERM/);
    expect([stopping.length, httpClosed.length, stopped.length]).toEqual([1, 1, 1]);
    expect(first.lines.filter((l) => l.json.notJson)).toEqual([]);

    // Nothing is left claimed by the stopped instance: sent, or released with the attempt un-counted.
    const [rowsAtExit] = await db.query<mysql.RowDataPacket[]>(
      'SELECT id, status, attempts, locked_by FROM mail_outbox ORDER BY id',
    );
    expect(rowsAtExit).toHaveLength(MAILS);
    expect(rowsAtExit.filter((r) => r.locked_by !== null)).toEqual([]);
    const sentByFirst = rowsAtExit.filter((r) => r.status === 'sent').length;
    const released = first.logged(/released: not attempted: the instance is stopping/).length;
    expect(released).toBeGreaterThan(0);
    expect(sentByFirst).toBe(capture.messages.length);

    // A second instance finishes the drain: every address gets its mail exactly once.
    capture.setReplyDelay(0);
    mark('exited');
    const second = await AppProcess.start(env);
    mark('second booted');
    try {
      await capture.waitForCount(MAILS, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT status, attempts FROM mail_outbox');
      expect(rows.map((r) => `${r.status}/${r.attempts}`)).toEqual(Array(MAILS).fill('sent/1'));
      const delivered = capture.messages.flatMap(recipientsOf).sort();
      expect(delivered).toEqual([...emails].map((e) => e.toLowerCase()).sort());
      expect(capture.abandoned).toBe(0);
    } finally {
      await second.stop();
      await db.end();
    }

    const counts = (kind: Outcome['kind']) => outcomes.filter((o) => o.kind === kind).length;
    process.stdout.write(
      `shutdown: SIGTERM -> first refusal ${firstRefusal} ms, last answer ${lastAnswer} ms, exit ${exit.at - sigtermAt} ms ` +
        `(code ${exit.code}); ${inFlight.length} requests in flight at SIGTERM all answered; ` +
        `${counts('complete')} complete, ${counts('refused')} refused + ${resets.length} reset in the accept queue, 0 mid-body; mail: ${sentByFirst} sent before exit, ` +
        `${released} released, ${MAILS - sentByFirst} sent by the second instance, each once (${phase.join(', ')} ms)\n`,
    );
  }, 90_000);
});
