import type { MailerOptions, TemplateAdapter } from '@nestjs-modules/mailer';
import { HandlebarsAdapter } from '@nestjs-modules/mailer/adapters/handlebars.adapter';
import Handlebars from 'handlebars';

/** The part of nodemailer's message that a template adapter reads and fills. */
interface AdapterMail {
  data: { template?: string; context?: object; html?: unknown; text?: unknown };
}

/**
 * Renders both parts of a mail with the mailer's HandlebarsAdapter: `<name>.text.hbs` into `text`,
 * then `<name>.html.hbs` into `html`. The stock adapter renders only the HTML part (its text templates
 * are plain `{{key}}` substitution, without a layout); each of our templates wraps itself in its
 * layout with a partial block (`{{#> html-layout}}`), from the adapter's partials directory.
 *
 * The stock adapter runs synchronously. On a missing template file it reports the error to its
 * callback and then throws a TypeError; handed nodemailer's callback directly, that rejects the send
 * with the TypeError and leaves nodemailer's own promise rejected and unhandled, which ends the
 * process. Here both become one error for one callback: a broken template fails its message
 * (retried, then dead), never the process.
 */
export class HtmlAndTextAdapter implements TemplateAdapter {
  private readonly handlebars = new HandlebarsAdapter(
    // `{{url link}}`: HTML-escapes a link without Handlebars' "=" → "&#x3D;", which leaves an href
    // valid but unreadable in the source. Text templates print as is with `{{{link}}}`.
    { url: (value: string) => new Handlebars.SafeString(escapeHtml(String(value))) },
    // The layout's styles are inline already; css-inline would only re-serialize the markup.
    { inlineCssEnabled: false },
  );

  compile(mail: AdapterMail, callback: (error?: unknown) => void, options: MailerOptions): void {
    const name = String(mail.data.template);
    const text: AdapterMail = { data: { template: `${name}.text.hbs`, context: mail.data.context } };
    let error = this.render(text, options);
    if (error === undefined) {
      mail.data.text = text.data.html;
      mail.data.template = `${name}.html.hbs`;
      error = this.render(mail, options);
    }
    callback(error);
  }

  /** Fills `mail.data.html`; returns the error, if any. */
  private render(mail: AdapterMail, options: MailerOptions): unknown {
    let finished = false;
    let failure: unknown;
    try {
      this.handlebars.compile(
        mail,
        (error?: unknown) => {
          finished = true;
          failure ??= error ?? undefined;
        },
        options,
      );
    } catch (error) {
      failure ??= error;
    }
    if (failure === undefined && !finished) {
      return new Error(`template "${String(mail.data.template)}" did not render`);
    }
    return failure;
  }
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
