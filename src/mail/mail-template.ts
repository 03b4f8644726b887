import ms from 'ms';
import { type MailContext, PermanentMailError } from './mail-sender.js';

export interface LinkLifetimes {
  verifyTtlMs: number;
  resetTtlMs: number;
}

export interface MailTemplateSpec {
  subject: string;
  /** Landing page the mailed link points at, carrying `data.token`; none for notices. */
  linkPath?: '/verify-email' | '/reset-password';
  /** Which token lifetime the mail promises. */
  ttl?: keyof LinkLifetimes;
  /**
   * Which interval limits this kind per recipient (DESIGN §5 "Mail budget per recipient"); each such
   * mail also counts against the hourly cap. Absent for notices of a change the owner made (a
   * password changed), which must always arrive.
   */
  budget?: 'interval' | 'accountExists';
}

/**
 * Every mail Gatehouse sends. Each name has `templates/<name>.html.hbs` and `<name>.text.hbs`; a new
 * mail is one line here plus its two templates.
 */
export const MAIL_TEMPLATES = {
  'verify-email': {
    subject: 'Confirm your email address',
    linkPath: '/verify-email',
    ttl: 'verifyTtlMs',
    budget: 'interval',
  },
  'account-exists': { subject: 'You already have an account', budget: 'accountExists' },
  'reset-password': {
    subject: 'Reset your password',
    linkPath: '/reset-password',
    ttl: 'resetTtlMs',
    budget: 'interval',
  },
  'password-changed': { subject: 'Your password was changed' },
  // Second-factor notices (DESIGN §10): a change the owner must hear about, so never budgeted.
  'mfa-enabled': { subject: 'Two-step sign-in was turned on' },
  'mfa-disabled': { subject: 'Two-step sign-in was turned off' },
} as const satisfies Record<string, MailTemplateSpec>;

export type MailTemplate = keyof typeof MAIL_TEMPLATES;

export const MAIL_TEMPLATE_NAMES = Object.keys(MAIL_TEMPLATES) as MailTemplate[];

export function isMailTemplate(name: string): name is MailTemplate {
  return Object.hasOwn(MAIL_TEMPLATES, name);
}

/** The subject and what the templates print, for one message; throws PermanentMailError if data is missing. */
export function mailContext(
  template: MailTemplate,
  to: string,
  data: Record<string, string>,
  links: { publicUrl: string; lifetimes: LinkLifetimes },
): MailContext {
  const spec: MailTemplateSpec = MAIL_TEMPLATES[template];
  let link: string | undefined;
  if (spec.linkPath) {
    if (!data.token) {
      throw new PermanentMailError(`template "${template}" needs a token`);
    }
    // Built from APP_PUBLIC_URL only, never from a request's Host (DESIGN §5).
    link = `${links.publicUrl}${spec.linkPath}?token=${encodeURIComponent(data.token)}`;
  }
  return {
    ...data,
    email: to,
    appUrl: links.publicUrl,
    subject: spec.subject,
    link,
    expiresIn: spec.ttl ? ms(links.lifetimes[spec.ttl], { long: true }) : undefined,
  };
}
