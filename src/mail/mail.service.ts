import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Clock } from '../common/clock.js';
import type { Config } from '../config/config.js';
import { budgetKey } from './mail-budget.js';
import { MailBudgetRepository } from './mail-budget.repository.js';
import { isMailTemplate, MAIL_TEMPLATES, type MailTemplate, type MailTemplateSpec } from './mail-template.js';
import { OutboxRepository, type OutboxStats } from './outbox.repository.js';
import { PayloadCipher, sealPayload } from './payload-cipher.js';

export type { MailTemplate } from './mail-template.js';
export type { OutboxStats } from './outbox.repository.js';

type MailData = Record<string, string>;

const HOUR_MS = 60 * 60 * 1000;

/**
 * The request side of the transactional outbox (DESIGN §6): one INSERT, no SMTP. The OutboxWorker
 * delivers the row later; `data` (e.g. `{ token }`) is encrypted at rest and erased once sent.
 */
@Injectable()
export class MailService {
  private readonly intervals: Record<'interval' | 'accountExists', number>;
  private readonly perHour: number;

  constructor(
    private readonly outbox: OutboxRepository,
    private readonly budget: MailBudgetRepository,
    private readonly cipher: PayloadCipher,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
  ) {
    const mail = config.getOrThrow('mail', { infer: true });
    this.intervals = { interval: mail.budgetIntervalMs, accountExists: mail.accountExistsIntervalMs };
    this.perHour = mail.budgetPerHour;
  }

  /**
   * Queues a mail in the caller's unit of work, unless the recipient's budget (DESIGN §5) is spent:
   * then nothing is queued and this returns false, for the caller to audit. `data` may be a function,
   * called only when the mail is queued, so a link's token is issued only for a mail that goes out.
   */
  async enqueue(
    template: MailTemplate,
    to: string,
    data: MailData | (() => Promise<MailData>),
  ): Promise<boolean> {
    // Both are programming errors, so they fail the caller loudly rather than queue a message that
    // can never be sent. A syntactically odd address is the worker's call (it marks the row dead).
    if (!isMailTemplate(template)) {
      throw new Error(`Unknown mail template "${String(template)}"`);
    }
    if (to.length === 0 || to.length > 255) {
      throw new Error('A mail recipient must be 1-255 characters');
    }
    if (!(await this.withinBudget(template, to))) {
      return false;
    }
    const values = typeof data === 'function' ? await data() : data;
    // Joins the caller's unit of work: the message commits, or rolls back, with its change.
    await this.outbox.enqueue({
      template,
      recipient: to,
      payload: sealPayload(this.cipher, template, to, values),
      dueAt: this.clock.now(),
    });
    return true;
  }

  /** For metrics: what is waiting, and what gave up. Never on a public probe (a per-user signal). */
  outboxStats(): Promise<OutboxStats> {
    return this.outbox.stats();
  }

  /** One mail of this kind per interval, and `MAIL_BUDGET_PER_HOUR` of any kind, per canonical mailbox. */
  private async withinBudget(template: MailTemplate, to: string): Promise<boolean> {
    const spec: MailTemplateSpec = MAIL_TEMPLATES[template];
    if (!spec.budget) {
      return true;
    }
    const key = budgetKey(to);
    const now = this.clock.now();
    return (
      (await this.budget.take(key, template, now, this.intervals[spec.budget], 1)) &&
      (await this.budget.take(key, '*', now, HOUR_MS, this.perHour))
    );
  }

  /** Deletes budget windows too old to limit anything; returns how many went. */
  purgeBudget(): Promise<number> {
    const longest = Math.max(HOUR_MS, ...Object.values(this.intervals));
    return this.budget.purgeStartedBefore(new Date(this.clock.now().getTime() - longest));
  }
}
