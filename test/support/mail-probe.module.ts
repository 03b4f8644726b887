import { ApiExcludeController } from '@nestjs/swagger';
import { Body, Controller, Module, Post } from '@nestjs/common';
import { IsString, MaxLength } from 'class-validator';
import { Public } from '../../src/common/auth/decorators.js';
import { UnitOfWork } from '../../src/database/unit-of-work.js';
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
// An instrument for the tests, not part of the API: left out of the OpenAPI document, so unvalidated.
@ApiExcludeController()
@Controller('mail-probe')
export class MailProbeController {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly mail: MailService,
  ) {}

  @Public()
  @Post('verify')
  async verify(@Body() body: MailProbeDto) {
    let enqueueMs = 0;
    // No manager passed: the message joins the open unit of work.
    await this.uow.withTransaction(async () => {
      const started = performance.now();
      await this.mail.enqueue('verify-email', body.to, { token: body.token });
      enqueueMs = performance.now() - started;
    });
    return { enqueueMs };
  }
}

@Module({ imports: [MailModule], controllers: [MailProbeController] })
export class MailProbeModule {}
