import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import ms from 'ms';

export const MAIL_TEMPLATES = [
  'verify-email',
  'account-exists',
  'reset-password',
  'password-changed',
] as const;
export type MailTemplate = (typeof MAIL_TEMPLATES)[number];

export function isMailTemplate(name: string): name is MailTemplate {
  return (MAIL_TEMPLATES as readonly string[]).includes(name);
}

interface TemplateSpec {
  subject: string;
  /** Landing page the mailed `{{link}}` points at, carrying `data.token`; none for notices. */
  linkPath?: '/verify-email' | '/reset-password';
  /** Which token lifetime the mail promises. */
  ttl?: keyof LinkLifetimes;
}

export interface LinkLifetimes {
  verifyTtlMs: number;
  resetTtlMs: number;
}

const SPECS: Record<MailTemplate, TemplateSpec> = {
  'verify-email': { subject: 'Confirm your email address', linkPath: '/verify-email', ttl: 'verifyTtlMs' },
  'account-exists': { subject: 'You already have an account' },
  'reset-password': { subject: 'Reset your password', linkPath: '/reset-password', ttl: 'resetTtlMs' },
  'password-changed': { subject: 'Your password was changed' },
};

export interface RenderedMail {
  subject: string;
  html: string;
  text: string;
  /** The link in the mail, if any: the development file transport logs it. */
  link?: string;
}

/** Thrown for mail that no retry can fix (unknown template, missing data): the row goes dead at once. */
export class PermanentMailError extends Error {}

/** src/mail/templates in tests, dist/src/mail/templates once built (nest-cli.json assets). */
export const TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

/**
 * Renders the Handlebars templates (HTML and text, each inside a shared layout). We render here and
 * hand finished html/text to @nestjs-modules/mailer rather than use its HandlebarsAdapter: the
 * adapter's text templates are plain `{{key}}` substitution without a layout, and a missing template
 * fails inside nodemailer's plugin chain instead of as an error the worker can classify.
 */
export class MailRenderer {
  private readonly handlebars = Handlebars.create();
  private readonly compiled = new Map<string, Handlebars.TemplateDelegate>();

  constructor(
    private readonly publicUrl: string,
    private readonly lifetimes: LinkLifetimes,
    private readonly dir: string = TEMPLATES_DIR,
  ) {}

  render(template: string, to: string, data: Record<string, string>): RenderedMail {
    if (!isMailTemplate(template)) {
      throw new PermanentMailError(`unknown mail template "${template}"`);
    }
    const spec = SPECS[template];
    let link: string | undefined;
    if (spec.linkPath) {
      if (!data.token) {
        throw new PermanentMailError(`template "${template}" needs a token`);
      }
      // Built from APP_PUBLIC_URL only, never from a request's Host (DESIGN §5).
      link = `${this.publicUrl}${spec.linkPath}?token=${encodeURIComponent(data.token)}`;
    }
    const expiresIn = spec.ttl ? ms(this.lifetimes[spec.ttl], { long: true }) : undefined;
    const context = { ...data, link, expiresIn, email: to, appUrl: this.publicUrl, subject: spec.subject };
    // Handlebars' own escaping also encodes "=" (&#x3D;), which leaves a link in an href valid but
    // unreadable in the source; the link is ours, so only the characters HTML needs are escaped.
    const htmlContext = {
      ...context,
      link: link === undefined ? undefined : new Handlebars.SafeString(escapeHtml(link)),
    };
    const html = this.template('layout.html')({
      ...htmlContext,
      body: new Handlebars.SafeString(this.template(`${template}.html`)(htmlContext)),
    });
    const text = this.template('layout.text')({
      ...context,
      body: this.template(`${template}.text`)(context),
    });
    return { subject: spec.subject, html, text, link };
  }

  private template(name: string): Handlebars.TemplateDelegate {
    let compiled = this.compiled.get(name);
    if (!compiled) {
      const source = readFileSync(`${this.dir}${name}.hbs`, 'utf8');
      // strict: a variable the caller forgot is an error, not an empty string in someone's inbox.
      // Text parts are not HTML: noEscape keeps "&" in a link as "&".
      compiled = this.handlebars.compile(source, { strict: true, noEscape: name.endsWith('.text') });
      this.compiled.set(name, compiled);
    }
    return compiled;
  }
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
