import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAIL_TEMPLATES, MailRenderer } from '../src/mail/mail-templates.js';

const ROOT = process.cwd();
const BUILT_MODULE = join(ROOT, 'dist/src/mail/mail-templates.js');
const BUILT_TEMPLATES = join(ROOT, 'dist/src/mail/templates');
const SOURCE_TEMPLATES = join(ROOT, 'src/mail/templates');
const lifetimes = { verifyTtlMs: 24 * 3_600_000, resetTtlMs: 3_600_000 };

/** True when dist is missing or older than a template or the renderer. */
function stale(): boolean {
  if (!existsSync(BUILT_MODULE) || !existsSync(BUILT_TEMPLATES)) {
    return true;
  }
  const built = statSync(BUILT_MODULE).mtimeMs;
  const sources = [
    join(ROOT, 'src/mail/mail-templates.ts'),
    ...readdirSync(SOURCE_TEMPLATES).map((f) => join(SOURCE_TEMPLATES, f)),
  ];
  return (
    sources.some((f) => statSync(f).mtimeMs > built) ||
    readdirSync(SOURCE_TEMPLATES).some((f) => !existsSync(join(BUILT_TEMPLATES, f)))
  );
}

describe('mail templates in the built app', () => {
  beforeAll(() => {
    // `npm test` builds first; a lone run of this file builds when dist is missing or stale.
    if (stale()) {
      execFileSync('npx', ['nest', 'build'], { cwd: ROOT, stdio: 'ignore', timeout: 180_000 });
    }
  }, 200_000);

  it('should copy every template into dist through the nest-cli.json assets', () => {
    expect(readdirSync(BUILT_TEMPLATES).sort()).toEqual(readdirSync(SOURCE_TEMPLATES).sort());
  });

  it('should render every template, HTML and text, from dist exactly as from src', async () => {
    const built = (await import(
      pathToFileURL(BUILT_MODULE).href
    )) as typeof import('../src/mail/mail-templates.js');
    expect(built.TEMPLATES_DIR.replace(/\/$/, '')).toBe(BUILT_TEMPLATES);
    const fromDist = new built.MailRenderer('https://gatehouse.example', lifetimes);
    const fromSrc = new MailRenderer('https://gatehouse.example', lifetimes);
    for (const template of MAIL_TEMPLATES) {
      const rendered = fromDist.render(template, 'someone@example.test', { token: 'T0ken_-abc' });
      expect(rendered.html).toContain('<!doctype html>');
      expect(rendered.text).toContain('someone@example.test');
      expect(rendered).toEqual(fromSrc.render(template, 'someone@example.test', { token: 'T0ken_-abc' }));
    }
  });
});
