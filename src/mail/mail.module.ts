import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { MailerModule } from '@nestjs-modules/mailer';
import type { Config } from '../config/config.js';
import { MailBudgetRepository } from './mail-budget.repository.js';
import { MailSender } from './mail-sender.js';
import { MailService } from './mail.service.js';
import { MailerMailSender } from './mailer-mail-sender.js';
import { mailerOptions } from './mailer.options.js';
import { OutboxRetention } from './outbox-retention.service.js';
import { OutboxRepository } from './outbox.repository.js';
import { OutboxWorker } from './outbox.worker.js';
import { PayloadCipher } from './payload-cipher.js';

/** The transactional outbox: MailService writes rows, OutboxWorker hands them to the MailSender. */
@Module({
  imports: [
    MailerModule.forRootAsync({
      imports: [],
      inject: [ConfigService],
      useFactory: (config: ConfigService<Config, true>) =>
        mailerOptions(config.getOrThrow('mail', { infer: true })),
    }),
  ],
  providers: [
    {
      provide: PayloadCipher,
      inject: [ConfigService],
      useFactory: (config: ConfigService<Config, true>) =>
        new PayloadCipher(config.getOrThrow('mail', { infer: true }).payloadKeys),
    },
    // The swappable sending step (DESIGN §11): provide another MailSender class here to send through
    // something other than @nestjs-modules/mailer.
    { provide: MailSender, useClass: MailerMailSender },
    OutboxRepository,
    MailBudgetRepository,
    MailService,
    OutboxWorker,
    OutboxRetention,
  ],
  exports: [MailService, OutboxWorker],
})
export class MailModule {}
