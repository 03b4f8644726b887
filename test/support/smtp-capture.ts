import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/**
 * How the capture misbehaves, to drive the outbox's failure paths:
 * - `down`: the port refuses connections (nothing listens);
 * - `tempfail` / `permfail`: SMTP answers 451 / 550 to every message;
 * - `hang`: accepts the TCP connection and never says a word (greeting timeout);
 * - `garbage`: answers the connection with something that is not SMTP.
 */
export type CaptureMode = 'normal' | 'down' | 'tempfail' | 'permfail' | 'hang' | 'garbage';

/** A real SMTP server on a free local port that keeps every message it receives, parsed. */
export class SmtpCapture {
  readonly messages: ParsedMail[] = [];
  /** Addresses refused at RCPT TO with 550, as a server refuses an unknown mailbox. */
  readonly rejectedRecipients = new Set<string>();
  /** Connections currently open (hung ones included), closed on stop(). */
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  private listener: Server | undefined;
  private mode: CaptureMode = 'normal';
  /** See setReplyDelay(). */
  private replyDelayMs = 0;
  /** Client ports whose connection the client has ended (smtp-server's session knows only the port). */
  private readonly hungUp = new Set<number>();
  /**
   * Messages whose whole DATA arrived but whose client hung up before the server's (late) 250: not
   * accepted, so not delivered (RFC 5321 §6.1: responsibility passes only with the 250 reply).
   */
  abandoned = 0;
  private readonly smtp: SMTPServer;

  private constructor(readonly port: number) {
    this.smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      // No PTR lookup before the greeting: it can stall a loopback connection for up to 1.5 s.
      disableReverseLookup: true,
      size: 10 * 1024 * 1024,
      onConnect: (_session, callback) => this.late(() => callback()),
      onMailFrom: (_address, _session, callback) => this.late(() => callback()),
      onRcptTo: (address, _session, callback) => {
        if (this.rejectedRecipients.has(address.address.toLowerCase())) {
          return callback(
            Object.assign(new Error(`<${address.address}>: Recipient address rejected: User unknown`), {
              responseCode: 550,
            }),
          );
        }
        this.late(() => callback());
      },
      onData: (stream, session, callback) => {
        simpleParser(stream)
          .then((mail) => new Promise<typeof mail>((resolve) => this.late(() => resolve(mail))))
          .then((mail) => {
            if (this.hungUp.has(session.remotePort)) {
              this.abandoned += 1;
              return callback(new Error('client went away before the reply'));
            }
            if (this.mode === 'tempfail' || this.mode === 'permfail') {
              const error = Object.assign(
                new Error(this.mode === 'tempfail' ? 'Try again later' : 'Mailbox unavailable'),
                {
                  responseCode: this.mode === 'tempfail' ? 451 : 550,
                },
              );
              return callback(error);
            }
            this.messages.push(mail);
            this.waiters.forEach((notify) => notify());
            callback();
          })
          .catch((error: Error) => callback(error));
      },
    });
    this.smtp.on('error', () => undefined);
  }

  static async start(): Promise<SmtpCapture> {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const capture = new SmtpCapture(port);
    await capture.listen();
    return capture;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Switches behaviour; `normal` after `down` listens again on the same port. */
  async setMode(mode: CaptureMode): Promise<void> {
    this.mode = mode;
    if (mode === 'down') {
      await this.unlisten();
    } else if (!this.listener) {
      await this.listen();
    }
  }

  /** Resolves with the first captured message (past or future) that matches. */
  async waitFor(predicate: (m: ParsedMail) => boolean, timeoutMs = 5000): Promise<ParsedMail> {
    const found = this.messages.find(predicate);
    if (found) {
      return found;
    }
    return new Promise((resolve, reject) => {
      const check = () => {
        const match = this.messages.find(predicate);
        if (match) {
          finish();
          resolve(match);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`No matching mail within ${timeoutMs} ms (${this.messages.length} captured)`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
    });
  }

  /** Resolves once `count` messages have arrived in total. */
  async waitForCount(count: number, timeoutMs = 10000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`Expected ${count} mails, got ${this.messages.length} within ${timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  clear(): void {
    this.messages.length = 0;
    this.abandoned = 0;
  }

  /**
   * Delays every reply the client waits for (greeting, MAIL FROM, RCPT TO, and the final reply to
   * DATA) by `ms`: a slow server each of whose pauses stays under the client's socket timeout.
   */
  setReplyDelay(ms: number): void {
    this.replyDelayMs = ms;
  }

  private late(reply: () => void): void {
    if (this.replyDelayMs > 0) {
      setTimeout(reply, this.replyDelayMs);
    } else {
      reply();
    }
  }

  async stop(): Promise<void> {
    await this.unlisten();
    await new Promise<void>((resolve) => this.smtp.close(() => resolve()));
  }

  private async listen(): Promise<void> {
    const listener = createServer((socket) => this.accept(socket));
    listener.listen(this.port, '127.0.0.1');
    await once(listener, 'listening');
    this.listener = listener;
  }

  private async unlisten(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    this.sockets.forEach((socket) => socket.destroy());
    if (listener) {
      await new Promise((resolve) => listener.close(resolve));
    }
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const port = socket.remotePort ?? 0;
    this.hungUp.delete(port);
    socket.on('end', () => this.hungUp.add(port));
    socket.on('close', () => {
      this.hungUp.add(port);
      this.sockets.delete(socket);
    });
    socket.on('error', () => undefined);
    switch (this.mode) {
      case 'hang':
        return;
      case 'garbage':
        socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
        return;
      case 'down':
        socket.destroy();
        return;
      case 'normal':
      case 'tempfail':
      case 'permfail':
        // smtp-server's own connection handler, fed sockets from our listener so we can misbehave above.
        (this.smtp as unknown as { connect(socket: Socket): void }).connect(socket);
        return;
    }
  }
}

/** The first link in a mail's text part that starts with `base` (e.g. 'http://gatehouse.test/verify-email'). */
export function linkFrom(mail: ParsedMail, base: string): string {
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}\\?token=[A-Za-z0-9_%-]+`).exec(mail.text ?? '');
  if (!match) {
    throw new Error(`No ${base} link in mail "${mail.subject ?? ''}"`);
  }
  return match[0];
}

/** The raw token carried by the mail's link (verify-email or reset-password). */
export function tokenFrom(mail: ParsedMail): string {
  const match = /[?&]token=([A-Za-z0-9_%-]+)/.exec(mail.text ?? '');
  if (!match) {
    throw new Error(`No token link in mail "${mail.subject ?? ''}"`);
  }
  return decodeURIComponent(match[1]);
}

/** The addresses a parsed mail was sent to. */
export function recipientsOf(mail: ParsedMail): string[] {
  const to = Array.isArray(mail.to) ? mail.to : mail.to ? [mail.to] : [];
  return to.flatMap((a) => a.value.map((v) => v.address ?? ''));
}
