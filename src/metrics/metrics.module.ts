import { Global, Module } from '@nestjs/common';
import { MailModule } from '../mail/mail.module.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/** Global, so any feature (login, throttling) can inject MetricsService without importing this module. */
@Global()
@Module({
  imports: [MailModule],
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
