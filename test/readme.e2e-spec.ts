import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestApp } from './support/test-app.js';

const run = promisify(execFile);

/** The body of the first ```lang block after `heading` in the README. */
function codeBlock(heading: string, lang: string): string {
  const readme = readFileSync('README.md', 'utf8');
  const from = readme.indexOf(`\`\`\`${lang}\n`, readme.indexOf(heading));
  expect(readme.indexOf(heading)).toBeGreaterThanOrEqual(0);
  return readme.slice(from + lang.length + 4, readme.indexOf('```\n', from + 3));
}

describe('README', () => {
  it('shows the typed-client example that clients/typescript/example.ts compiles', () => {
    const shown = codeBlock('### The typed client in ten lines', 'ts');
    const compiled = readFileSync('clients/typescript/example.ts', 'utf8').replace(/^\/\/.*\n/, '');
    expect(shown.replace('./clients/typescript/gatehouse-client.js', './gatehouse-client.js')).toBe(compiled);
    expect(shown.trim().split('\n')).toHaveLength(10);
  });

  describe('sign-up walkthrough', () => {
    let t: TestApp;
    let scratch: string;

    beforeAll(async () => {
      scratch = mkdtempSync(join(tmpdir(), 'gatehouse-readme-'));
      // No MAIL_URL: mail is written as .eml files, as under `npm start`.
      t = await TestApp.start({ MAIL_DIR: join(scratch, 'mail') });
    });

    afterAll(async () => {
      await t.close();
      rmSync(scratch, { recursive: true, force: true });
    });

    it('registers, verifies from the .eml, logs in, refreshes and logs out when pasted into bash', async () => {
      const script = codeBlock('## Sign up on the embedded default', 'bash')
        .replace('http://localhost:3000', t.url)
        .replace('dir = "var/mail"', `dir = ${JSON.stringify(join(scratch, 'mail'))}`);
      expect(script).toContain(t.url);

      const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script], { timeout: 30_000 });

      const lines = stdout.trim().split('\n');
      expect(lines[0]).toBe('{"message":"If the address can be used, an email is on its way."}');
      expect(lines[1]).toBe('{"message":"Your email address is confirmed."}');
      expect(JSON.parse(lines[2])).toMatchObject({ email: expect.stringMatching(/^ada\+\d+@example\.com$/) });
      expect(JSON.parse(lines[2])).toMatchObject({ isVerified: true });
      expect(JSON.parse(lines[3])).toMatchObject({ title: 'Renew the TLS certificate', completed: false });
      expect(JSON.parse(lines[4]).items).toHaveLength(1);
      expect(lines.slice(5)).toEqual(['204', '401']);
    });
  });
});
