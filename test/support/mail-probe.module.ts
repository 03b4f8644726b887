import { Body, Controller, Module, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { IsString, MaxLength } from 'class-validator';
import type { DataSource } from 'typeorm';
import { Public } from '../../src/common/auth/decorators.js';
import { MailModule } from '../../src/mail/mail.module.js';
import { MailService } from '../../src/mail/mail.service.js';

export class MailProbeDto {
  @IsString()
  @MaxLength(255)
  to!: string;

  @IsString()
  @MaxLength(200)
  token!: string;
}

/** A request that sends mail the way the account flows will: an outbox row inside its transaction. */
@Controller('mail-probe')
export class MailProbeController {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly mail: MailService,
  ) {}

  @Public()
  @Post('verify')
  async verify(@Body() body: MailProbeDto) {
    let enqueueMs = 0;
    await this.dataSource.transaction(async (manager) => {
      const started = performance.now();
      await this.mail.enqueue('verify-email', body.to, { token: body.token }, { manager });
      enqueueMs = performance.now() - started;
    });
    return { enqueueMs };
  }
}

@Module({ imports: [MailModule], controllers: [MailProbeController] })
export class MailProbeModule {}
