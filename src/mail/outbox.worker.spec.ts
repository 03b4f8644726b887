import { randomBytes } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Clock } from '../common/clock.js';
import { Shutdown } from '../common/shutdown.js';
import { type Config, loadConfig } from '../config/config.js';
import { parseDuration } from '../config/duration.js';
import { MailSender, type OutgoingMail, PermanentMailError } from './mail-sender.js';
import { OutboxMessage } from './outbox-message.entity.js';
import type { OutboxClaims } from './outbox.repository.js';
import { CLAIM_BATCH, OutboxWorker } from './outbox.worker.js';
import { PayloadCipher, payloadKeyId, sealPayload } from './payload-cipher.js';

const NOW = new Date('2026-01-02T03:04:05.000Z');
const BASE_DELAY_MS = 30_000;

class FixedClock extends Clock {
  override now(): Date {
    return new Date(NOW);
  }
}

/** The MailSender seam: records what it is given, or fails with `failure`. */
class FakeSender extends MailSender {
  readonly sent: OutgoingMail[] = [];
  failure: Error | undefined;
  /** When set, each send waits for it (or for its abort signal, which rejects it). */
  gate: Promise<void> | undefined;
  started = 0;

  async send(mail: OutgoingMail, signal?: AbortSignal): Promise<void> {
    this.started += 1;
    if (this.gate) {
      await Promise.race([
        this.gate,
        new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted')))),
      ]);
    }
    if (this.failure) {
      throw this.failure;
    }
    this.sent.push(mail);
  }
}

/** The repository seam: hands out `batches` one claim at a time, and records how each claim is released. */
function fakeOutbox(...batches: OutboxMessage[][]): jest.Mocked<OutboxClaims> {
  const claimDue = jest.fn<Promise<OutboxMessage[]>, Parameters<OutboxClaims['claimDue']>>();
  claimDue.mockImplementation(() => Promise.resolve(batches.shift() ?? []));
  return {
    claimDue,
    markSent: jest.fn<Promise<boolean>, Parameters<OutboxClaims['markSent']>>().mockResolvedValue(true),
    markFailed: jest.fn<Promise<boolean>, Parameters<OutboxClaims['markFailed']>>().mockResolvedValue(true),
    markDead: jest.fn<Promise<boolean>, Parameters<OutboxClaims['markDead']>>().mockResolvedValue(true),
    handBack: jest.fn<Promise<boolean>, Parameters<OutboxClaims['handBack']>>().mockResolvedValue(true),
  };
}

describe(OutboxWorker.name, () => {
  const config = loadConfig({
    NODE_ENV: 'test',
    APP_PUBLIC_URL: 'https://gatehouse.example',
    MAIL_MAX_ATTEMPTS: '3',
    MAIL_RETRY_BASE_DELAY: `${BASE_DELAY_MS}ms`,
  });
  const key = randomBytes(32);
  const cipher = new PayloadCipher(key);
  let ids = 0;

  beforeEach(() => {
    // The worker reports every outcome in the log; keep the test output to the results.
    for (const level of ['log', 'warn', 'error'] as const) {
      jest.spyOn(Logger.prototype, level).mockImplementation(() => undefined);
    }
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  /** A row as claimDue returns it: leased to the worker, its attempt already counted. */
  function claimed(
    overrides: Partial<OutboxMessage> & { data?: Record<string, string> } = {},
  ): OutboxMessage {
    const { data = {}, ...fields } = overrides;
    const row = Object.assign(new OutboxMessage(), {
      id: (ids += 1),
      template: 'password-changed',
      recipient: `user-${ids}@example.test`,
      status: 'pending',
      attempts: 1,
      lockedBy: 'worker',
      lockedUntil: new Date(NOW.getTime() + 60_000),
      ...fields,
    });
    row.payload = sealPayload(cipher, row.template, row.recipient, data);
    return row;
  }

  function setup(...batches: OutboxMessage[][]) {
    return setupWith(cipher, ...batches);
  }

  function setupWith(workerCipher: PayloadCipher, ...batches: OutboxMessage[][]) {
    return setupWithGrace('20s', workerCipher, ...batches);
  }

  function setupWithGrace(grace: string, workerCipher: PayloadCipher, ...batches: OutboxMessage[][]) {
    const outbox = fakeOutbox(...batches);
    const sender = new FakeSender();
    const shutdown = new Shutdown(
      new ConfigService<Config, true>({
        ...config,
        app: { ...config.app, shutdownGraceMs: parseDuration(grace)! },
      }),
    );
    const sut = new OutboxWorker(
      outbox,
      sender,
      workerCipher,
      new FixedClock(),
      new ConfigService<Config, true>(config),
      shutdown,
    );
    return { sut, outbox, sender, shutdown };
  }

  it('should claim due rows for itself under a lease, batch after batch, until a batch comes back short', async () => {
    const full = Array.from({ length: CLAIM_BATCH }, () => claimed());
    const { sut, outbox, sender } = setup(full, [claimed(), claimed()]);

    await expect(sut.drainOnce()).resolves.toBe(CLAIM_BATCH + 2);

    expect(outbox.claimDue).toHaveBeenCalledTimes(2);
    const [workerId, now, leaseUntil, limit] = outbox.claimDue.mock.calls[0];
    expect(workerId).toBe(sut.workerId);
    expect(now).toEqual(NOW);
    expect(leaseUntil.getTime()).toBeGreaterThan(NOW.getTime() + 60_000);
    expect(limit).toBe(CLAIM_BATCH);
    expect(sender.sent).toHaveLength(CLAIM_BATCH + 2);
  });

  it('should hand the MailSender the decrypted message with its link, then mark the row sent, which erases its payload', async () => {
    const row = claimed({ template: 'verify-email', data: { token: 'tok_en-1' } });
    const { sut, outbox, sender } = setup([row]);

    await expect(sut.drainOnce()).resolves.toBe(1);

    expect(sender.sent).toEqual([
      {
        outboxId: row.id,
        template: 'verify-email',
        to: row.recipient,
        subject: 'Confirm your email address',
        context: expect.objectContaining({
          token: 'tok_en-1',
          email: row.recipient,
          link: 'https://gatehouse.example/verify-email?token=tok_en-1',
          expiresIn: '1 day',
        }) as unknown,
      },
    ]);
    expect(outbox.markSent).toHaveBeenCalledWith(row, NOW);
    expect(outbox.markFailed).not.toHaveBeenCalled();
    expect(outbox.markDead).not.toHaveBeenCalled();
  });

  it('should reschedule a failed send with exponential backoff, keeping the reason', async () => {
    const first = claimed({ attempts: 1 });
    const second = claimed({ attempts: 2 });
    const { sut, outbox, sender } = setup([first, second]);
    sender.failure = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ESOCKET' });

    await expect(sut.drainOnce()).resolves.toBe(2);

    expect(outbox.markFailed).toHaveBeenCalledTimes(2);
    const delay = (row: OutboxMessage) => {
      const call = outbox.markFailed.mock.calls.find(([claim]) => claim === row);
      expect(call?.[1]).toBe('[ESOCKET] connect ECONNREFUSED 127.0.0.1:25');
      return (call?.[2].getTime() ?? 0) - NOW.getTime();
    };
    // base·2^(attempt-1), of which a random 50-100 %.
    expect(delay(first)).toBeGreaterThanOrEqual(BASE_DELAY_MS / 2);
    expect(delay(first)).toBeLessThanOrEqual(BASE_DELAY_MS);
    expect(delay(second)).toBeGreaterThanOrEqual(BASE_DELAY_MS);
    expect(delay(second)).toBeLessThanOrEqual(2 * BASE_DELAY_MS);
    expect(outbox.markSent).not.toHaveBeenCalled();
    expect(outbox.markDead).not.toHaveBeenCalled();
  });

  it('should mark the row dead when its last attempt fails', async () => {
    const row = claimed({ attempts: 3 });
    const { sut, outbox, sender } = setup([row]);
    sender.failure = Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 });

    await expect(sut.drainOnce()).resolves.toBe(1);

    expect(outbox.markDead).toHaveBeenCalledWith(row, '[550] Mailbox unavailable');
    expect(outbox.markFailed).not.toHaveBeenCalled();
  });

  it('should mark the row dead at once when no retry can help', async () => {
    const suppressed = claimed();
    const badAddress = claimed({ recipient: 'victim@example.test\r\nBcc: all@example.test' });
    const noToken = claimed({ template: 'reset-password' });
    const { sut, outbox, sender } = setup([suppressed, badAddress, noToken]);
    sender.failure = new PermanentMailError('address suppressed by the provider');

    await expect(sut.drainOnce()).resolves.toBe(3);

    expect(outbox.markDead).toHaveBeenCalledWith(suppressed, 'address suppressed by the provider');
    expect(outbox.markDead).toHaveBeenCalledWith(badAddress, 'invalid recipient address');
    expect(outbox.markDead).toHaveBeenCalledWith(noToken, 'template "reset-password" needs a token');
    expect(outbox.markFailed).not.toHaveBeenCalled();
  });

  it('should not count a failure to mark a delivered row as a failed send', async () => {
    const row = claimed();
    const { sut, outbox, sender } = setup([row]);
    outbox.markSent.mockRejectedValue(new Error('database went away'));

    await expect(sut.drainOnce()).resolves.toBe(1);

    expect(sender.sent).toHaveLength(1);
    expect(outbox.markFailed).not.toHaveBeenCalled();
    expect(outbox.markDead).not.toHaveBeenCalled();
  });

  describe('when the instance stops (SIGTERM)', () => {
    it('should finish the sends in flight and release, uncounted and due at once, the claimed rows not started', async () => {
      const rows = Array.from({ length: 7 }, () => claimed());
      const { sut, outbox, sender, shutdown } = setupWithGrace('20s', cipher, rows);
      let open!: () => void;
      sender.gate = new Promise((resolve) => (open = resolve));
      const drained = sut.drainOnce();
      await new Promise((resolve) => setImmediate(resolve));
      expect(sender.started).toBe(5); // SMTP_CONNECTIONS at a time

      shutdown.begin();
      open();
      await expect(drained).resolves.toBe(7);
      await sut.onModuleDestroy();

      expect(sender.sent).toHaveLength(5);
      expect(outbox.markSent).toHaveBeenCalledTimes(5);
      expect(outbox.handBack.mock.calls.map(([row, reason, due]) => [row.id, reason, due])).toEqual(
        rows.slice(5).map((row) => [row.id, 'not attempted: the instance is stopping', NOW]),
      );
      expect(outbox.markFailed).not.toHaveBeenCalled();
      expect(outbox.claimDue).toHaveBeenCalledTimes(1);
    });

    it('should cancel the sends still running when SHUTDOWN_GRACE runs out, and release their rows uncounted', async () => {
      const rows = [claimed({ attempts: 3 }), claimed()]; // a counted failure would make the first dead
      const { sut, outbox, sender, shutdown } = setupWithGrace('50ms', cipher, rows);
      sender.gate = new Promise(() => undefined); // a server that never answers
      const drained = sut.drainOnce();
      await new Promise((resolve) => setImmediate(resolve));

      shutdown.begin();
      await sut.onModuleDestroy();
      await expect(drained).resolves.toBe(2);

      expect(sender.sent).toHaveLength(0);
      expect(outbox.markDead).not.toHaveBeenCalled();
      expect(outbox.markFailed).not.toHaveBeenCalled();
      expect(outbox.handBack.mock.calls.map(([row, reason, due]) => [row.id, reason, due])).toEqual(
        rows.map((row) => [
          row.id,
          'cancelled: the instance stopped (SHUTDOWN_GRACE) before the send finished',
          NOW,
        ]),
      );
    });
  });

  describe('during a MAIL_PAYLOAD_KEY rotation', () => {
    const newer = randomBytes(32);

    it('should open rows sealed with an older key it still lists, and seal new ones with the first', async () => {
      const row = claimed({ template: 'verify-email', data: { token: 'old-key-token' } });
      const rotated = new PayloadCipher([newer, key]);
      const { sut, outbox, sender } = setupWith(rotated, [row]);

      await expect(sut.drainOnce()).resolves.toBe(1);

      expect(sender.sent[0].context.token).toBe('old-key-token');
      expect(outbox.markSent).toHaveBeenCalledWith(row, NOW);
      const sealed = JSON.parse(sealPayload(rotated, 't', 'r', {})) as { sealed: string };
      expect(sealed.sealed.split('.').slice(0, 2)).toEqual(['v2', payloadKeyId(newer)]);
    });

    it('should hand back, uncounted and never dead, a row sealed with a key it does not hold yet', async () => {
      const ahead = new PayloadCipher([newer, key]);
      const row = claimed({ attempts: 3 }); // the last attempt: a failure would make it dead
      row.payload = sealPayload(ahead, row.template, row.recipient, {});
      const { sut, outbox, sender } = setup([row]);

      await expect(sut.drainOnce()).resolves.toBe(1);

      expect(sender.sent).toHaveLength(0);
      expect(outbox.markDead).not.toHaveBeenCalled();
      expect(outbox.markFailed).not.toHaveBeenCalled();
      expect(outbox.handBack).toHaveBeenCalledWith(
        row,
        `sealed with key ${payloadKeyId(newer)}, which this instance does not hold (MAIL_PAYLOAD_KEY)`,
        new Date(NOW.getTime() + 10_000),
      );
    });

    it('should still mark dead a payload its key id names but that does not open (moved to another row)', async () => {
      const row = claimed();
      row.payload = sealPayload(cipher, row.template, 'someone-else@example.test', {});
      const { sut, outbox } = setup([row]);

      await expect(sut.drainOnce()).resolves.toBe(1);

      expect(outbox.handBack).not.toHaveBeenCalled();
      expect(outbox.markDead).toHaveBeenCalledWith(
        row,
        expect.stringMatching(/^payload cannot be decrypted .*was MAIL_PAYLOAD_KEY changed\?$/) as unknown,
      );
    });
  });
});
