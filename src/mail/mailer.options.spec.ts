import { createRequire } from 'node:module';
import { MailerService } from '@nestjs-modules/mailer';
import { mailerOptions } from './mailer.options.js';

const require = createRequire(import.meta.url);
/** What preview-email pulls in (Babel is left out: Jest itself loads it). */
const PREVIEW_ONLY = /node_modules\/(pug|pug-[a-z-]+|constantinople|mailparser)\//;

describe('mailerOptions', () => {
  it('keeps the mailer from loading preview-email (pug, mailparser) at boot, before anything can use it', async () => {
    const previewPath = createRequire(require.resolve('@nestjs-modules/mailer')).resolve('preview-email');
    new MailerService(mailerOptions({ url: undefined, smtpTimeoutMs: 1000 } as never), undefined as never);
    expect(Object.keys(require.cache).filter((path) => PREVIEW_ONLY.test(path))).toEqual([]);
    const preview = require(previewPath) as () => Promise<void>;
    await expect(preview()).rejects.toThrow('Gatehouse does not preview mail');

    // Sending still renders through the adapter: every e2e test that reads a mail goes this way.
  });
});
