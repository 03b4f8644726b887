import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MailerModule, MailerService } from '@nestjs-modules/mailer';
import { Test } from '@nestjs/testing';
import { type ParsedMail, simpleParser } from 'mailparser';
import { loadConfig } from '../src/config/config.js';
import { MAIL_TEMPLATE_NAMES, mailContext } from '../src/mail/mail-template.js';
import { mailerOptions, TEMPLATES_DIR } from '../src/mail/mailer.options.js';

const ROOT = process.cwd();
const BUILT_TEMPLATES = join(ROOT, 'dist/src/mail/templates');
const SOURCE_TEMPLATES = join(ROOT, 'src/mail/templates');

/** Every file under `dir`, as paths relative to it (the layouts sit in a subfolder). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

/** The mailer as the app configures it (MAIL_URL unset: the stream transport), on one templates folder. */
async function mailerOn(templatesDir: string): Promise<MailerService> {
  const { mail } = loadConfig({ NODE_ENV: 'test', APP_PUBLIC_URL: 'https://gatehouse.example' });
  const moduleRef = await Test.createTestingModule({
    imports: [MailerModule.forRoot(mailerOptions(mail, templatesDir))],
  }).compile();
  return moduleRef.get(MailerService);
}

async function render(
  mailer: MailerService,
  template: (typeof MAIL_TEMPLATE_NAMES)[number],
): Promise<ParsedMail> {
  const context = mailContext(
    template,
    'someone@example.test',
    { token: 'T0ken_-abc' },
    {
      publicUrl: 'https://gatehouse.example',
      lifetimes: { verifyTtlMs: 24 * 3_600_000, resetTtlMs: 3_600_000 },
    },
  );
  const info = (await mailer.sendMail({
    from: 'no-reply@gatehouse.example',
    to: 'someone@example.test',
    subject: context.subject,
    template,
    context,
  })) as { message: Buffer };
  return simpleParser(info.message);
}

// Tests run on dist (npm run build:test), so the app under test reads its templates from the copy
// nest-cli.json's assets made: this proves that copy is complete and renders like the sources.
describe('mail templates in the built app', () => {
  it('should copy every template into dist through the nest-cli.json assets', () => {
    expect(TEMPLATES_DIR.replace(/\/$/, '')).toBe(BUILT_TEMPLATES);
    expect(filesUnder(BUILT_TEMPLATES)).toEqual(filesUnder(SOURCE_TEMPLATES));
    for (const template of MAIL_TEMPLATE_NAMES) {
      expect(filesUnder(BUILT_TEMPLATES)).toEqual(
        expect.arrayContaining([`${template}.html.hbs`, `${template}.text.hbs`]),
      );
    }
  });

  it('should render every template, HTML and text in their layouts, from dist exactly as from src', async () => {
    const fromDist = await mailerOn(TEMPLATES_DIR);
    const fromSrc = await mailerOn(SOURCE_TEMPLATES);
    for (const template of MAIL_TEMPLATE_NAMES) {
      const built = await render(fromDist, template);
      expect(built.html).toContain('<!doctype html>');
      expect(built.html).toContain('This message was sent to someone@example.test');
      expect(built.text).toContain('This message was sent to someone@example.test');
      const source = await render(fromSrc, template);
      expect({ subject: built.subject, html: built.html, text: built.text }).toEqual({
        subject: source.subject,
        html: source.html,
        text: source.text,
      });
    }
  });
});
