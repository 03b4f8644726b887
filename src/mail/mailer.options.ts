import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MailerOptions } from '@nestjs-modules/mailer';
import type { MailConfig } from '../config/config.js';
import { HtmlAndTextAdapter } from './html-and-text.adapter.js';

/** src/mail/templates in a dev build's sources, dist/src/mail/templates once built (nest-cli.json assets). */
export const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/** The pooled SMTP transport sends up to this many messages at a time. */
export const SMTP_CONNECTIONS = 5;

/**
 * A hard cap on one send (a pool's queue wait included). The SMTP connection, greeting and socket
 * timeouts fire first on a silent server; this one catches a server that answers every step just in
 * time, and MailerMailSender then closes the connection, so a late "250" cannot deliver the message.
 */
export function sendTimeoutMs(mail: MailConfig): number {
  return mail.smtpTimeoutMs * 3;
}

/**
 * @nestjs-modules/mailer, configured from the `mail` namespace. MAIL_URL (smtp:// or smtps://, checked
 * at boot) picks a pooled SMTP transport whose timeouts keep a hung server from holding the worker.
 * Unset (development and tests; production refuses to boot without it), nodemailer's stream transport
 * builds each message and MailerMailSender keeps it as an .eml file under MAIL_DIR.
 */
export function mailerOptions(mail: MailConfig, templatesDir: string = TEMPLATES_DIR): MailerOptions {
  skipMailPreviews();
  const strict = { strict: true }; // a variable the caller forgot is an error, not a blank in someone's inbox
  return {
    transport:
      mail.url === undefined
        ? { streamTransport: true, buffer: true, newline: 'windows' }
        : {
            url: mail.url,
            pool: true,
            maxConnections: SMTP_CONNECTIONS,
            connectionTimeout: mail.smtpTimeoutMs,
            greetingTimeout: mail.smtpTimeoutMs,
            socketTimeout: mail.smtpTimeoutMs,
          },
    template: { dir: templatesDir, adapter: new HtmlAndTextAdapter(), options: strict },
    options: { partials: { dir: join(templatesDir, 'partials'), options: strict } },
    // No `sendTimeout`: the mailer's own only stops waiting and leaves the send running, so a late
    // success could follow the retry. MailerMailSender passes an AbortSignal instead.
  };
}

/**
 * The mailer requires its optional `preview-email` whenever a template adapter is set, previews on or
 * off, and that loads pug, Babel and mailparser: 36 MB of memory and ~0.6 s of every boot, for a
 * development feature (it opens each mail in a browser on the server) Gatehouse never turns on. Before
 * the mailer asks, require's cache answers for that module with a stand-in that refuses to preview.
 */
export function skipMailPreviews(): void {
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = createRequire(require.resolve('@nestjs-modules/mailer')).resolve('preview-email');
  } catch {
    return; // not installed: the mailer logs that previews are unavailable and goes on
  }
  if (require.cache[path] === undefined) {
    const standIn = new Module(path);
    standIn.filename = path;
    standIn.loaded = true;
    standIn.exports = () => Promise.reject(new Error('Gatehouse does not preview mail'));
    require.cache[path] = standIn;
  }
}
