import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Config } from '../config/config.js';
import { MailRenderer } from './mail-templates.js';
import { MailService } from './mail.service.js';
import { MailTransport } from './mail.transport.js';
import { OutboxRetention } from './outbox-retention.service.js';
import { OutboxWorker } from './outbox.worker.js';
import { PayloadCipher } from './payload-cipher.js';

/** The transactional outbox: MailService writes rows, OutboxWorker delivers them. */
@Module({
  providers: [
    {
      provide: PayloadCipher,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Config, true>) =>
        new PayloadCipher(config.getOrThrow('mail', { infer: true }).payloadKey),
    },
    {
      provide: MailRenderer,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Config, true>) =>
        new MailRenderer(
          config.getOrThrow('mail', { infer: true }).publicUrl,
          config.getOrThrow('tokens', { infer: true }),
        ),
    },
    MailTransport,
    MailService,
    OutboxWorker,
    OutboxRetention,
  ],
  exports: [MailService, OutboxWorker],
})
export class MailModule {}
