import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { MailerService } from '@nestjs-modules/mailer';
import type { Config, MailConfig } from '../config/config.js';
import { MailSender, type OutgoingMail } from './mail-sender.js';
import { sendTimeoutMs } from './mailer.options.js';

/**
 * The default MailSender: @nestjs-modules/mailer renders the templates (HtmlAndTextAdapter) and sends
 * through the transport mailerOptions() chose. With the development stream transport, the built
 * message is written as an .eml file (opens in any mail client) so a new user can finish sign-up
 * without a mail server.
 */
@Injectable()
export class MailerMailSender extends MailSender {
  private readonly logger = new Logger(MailSender.name);
  private readonly config: MailConfig;

  constructor(
    private readonly mailer: MailerService,
    config: ConfigService<Config, true>,
  ) {
    super();
    this.config = config.getOrThrow('mail', { infer: true });
  }

  /**
   * A send that outlives sendTimeoutMs() is cancelled, not abandoned: nodemailer drops it from the
   * pool's queue or closes the connection carrying it, before the worker reschedules the row. The
   * server never got its 250 out, so it must not deliver (RFC 5321 §6.1), and the retry is the only
   * delivery.
   */
  async send(mail: OutgoingMail, stop?: AbortSignal): Promise<void> {
    const limitMs = sendTimeoutMs(this.config);
    const timeout = AbortSignal.timeout(limitMs);
    const signal = stop ? AbortSignal.any([timeout, stop]) : timeout;
    let info: { message?: unknown };
    try {
      info = await this.mailer.sendMail({
        from: this.config.from,
        to: mail.to,
        subject: mail.subject,
        template: mail.template,
        context: mail.context,
        signal,
      });
    } catch (error) {
      if (timeout.aborted) {
        throw new Error(`send cancelled after ${limitMs} ms (3 × MAIL_SMTP_TIMEOUT), connection closed`, {
          cause: error,
        });
      }
      throw error;
    }
    if (Buffer.isBuffer(info.message)) {
      await this.keep(mail, info.message);
    }
  }

  private async keep(mail: OutgoingMail, raw: Buffer): Promise<void> {
    const dir = resolve(this.config.dir);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`;
    const path = join(dir, name);
    await writeFile(path, raw, { mode: 0o600 }); // files under var/ are 0600 (DESIGN §5)
    // The one place a link may be logged: development without a mail server. Never under
    // NODE_ENV=test or production.
    const link =
      this.config.nodeEnv === 'development' && mail.context.link ? `; link: ${mail.context.link}` : '';
    this.logger.log(`Mail #${mail.outboxId} (${mail.template}) written to ${path}${link}`);
  }
}
