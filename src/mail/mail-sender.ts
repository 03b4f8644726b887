import type { MailTemplate } from './mail-template.js';

/** What the templates print: the enqueued data plus what every mail knows about itself. */
export interface MailContext {
  [key: string]: string | undefined;
  /** The recipient. */
  email: string;
  /** APP_PUBLIC_URL. */
  appUrl: string;
  subject: string;
  /** The landing-page link carrying the token, for templates that have one. */
  link?: string;
  /** How long that link works, in words ("1 day"). */
  expiresIn?: string;
}

/** One claimed outbox row, ready to render and send. */
export interface OutgoingMail {
  /** The outbox row: stable across retries, so a sender may use it as an idempotency key. */
  outboxId: number;
  template: MailTemplate;
  to: string;
  subject: string;
  context: MailContext;
}

/**
 * Thrown for mail that no retry can fix (unknown template, missing data, a bad address): the outbox
 * marks the row dead at once. Any other error is retried with backoff until MAIL_MAX_ATTEMPTS.
 */
export class PermanentMailError extends Error {}

/**
 * The swappable last step of the outbox (DESIGN §11): render and hand over one message. The default,
 * MailerMailSender, renders the Handlebars templates and sends through @nestjs-modules/mailer; a team
 * that sends through something else (an HTTP mail API, a queue) provides its own class for this token
 * in MailModule. The outbox around it (claims, retries, encryption, exactly-once) stays the same.
 */
export abstract class MailSender {
  /**
   * Resolves once the message is accepted for delivery; rejects with the reason otherwise (it lands in
   * the row's last_error, so it must carry no secret). Throw PermanentMailError to skip the retries.
   *
   * `signal` is aborted when the instance stops (SIGTERM) and SHUTDOWN_GRACE runs out while this send
   * is still running: give up without delivering (close the connection before the server's reply).
   * The row is then released and sent by another instance; a sender that ignores the signal only
   * delays the exit.
   */
  abstract send(mail: OutgoingMail, signal?: AbortSignal): Promise<void>;
}
