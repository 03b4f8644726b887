import { ApiExcludeController } from '@nestjs/swagger';
import { Body, Controller, Get, Logger, Module, Post } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import type { DataSource } from 'typeorm';
import type { AuthUser } from '../../src/common/auth/auth-user.js';
import { CurrentUser, Public } from '../../src/common/auth/decorators.js';

export class ProbeDto {
  @IsString()
  @MaxLength(20)
  name!: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(10)
  count?: number;
}

/** Routes that exist only in the e2e suite, to drive the request pipeline from the outside. */
/** Bound into the failing statement of /probe/sql-crash; the logs must not contain it. */
export const PROBE_SECRET = '$2b$12$probeSecretHashThatMustNotBeLogged';

// An instrument for the tests, not part of the API: left out of the OpenAPI document, so unvalidated.
@ApiExcludeController()
@Controller('probe')
export class ProbeController {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  @Public()
  @Post('echo')
  echo(@Body() body: ProbeDto) {
    return body;
  }

  @Public()
  @Get('crash')
  crash(): never {
    throw new Error('secret internal detail at /srv/app/src/crash.ts:42');
  }

  @Public()
  @Get('sql-crash')
  async sqlCrash() {
    // A bound value a log must never show: MySQL's driver inlines it into `err.sql`.
    return this.dataSource.query('SELECT * FROM no_such_table_for_probe WHERE secret = ?', [PROBE_SECRET]);
  }

  /** A service's log line from inside a request: after its body was read and a database round trip. */
  @Post('noted')
  async noted(@CurrentUser() user: AuthUser, @Body() body: ProbeDto) {
    await this.dataSource.query('SELECT 1');
    new Logger('Probe').log(`noted ${body.name}`);
    return { id: user.id };
  }

  /** Answers after `count` quarter-seconds: a handler slower than a short REQUEST_TIMEOUT. */
  @Public()
  @Post('slow')
  async slow(@Body() body: ProbeDto) {
    await new Promise((done) => setTimeout(done, (body.count ?? 0) * 250));
    return body;
  }

  @Get('protected')
  protectedRoute(@CurrentUser() user: AuthUser) {
    return { id: user.id };
  }
}

@Module({ controllers: [ProbeController] })
export class ProbeModule {}
