import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import { AdminModule } from './admin/admin.module.js';
import { AuditModule } from './audit/audit.module.js';
import { AuthModule } from './auth/auth.module.js';
import { CommonModule } from './common/common.module.js';
import { loggerParams } from './common/logging.js';
import type { ValidatedConfig } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { MailModule } from './mail/mail.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { PagesModule } from './pages/pages.module.js';
import { TodosModule } from './todos/todos.module.js';
import { TokensModule } from './tokens/tokens.module.js';

export interface AppModuleOptions {
  /** The environment as validated by the ConfigModule's hook: `await validateConfig(env)`. */
  config: ValidatedConfig;
  /** Where logs go; stdout when unset. Tests pass a stream to read what was logged. */
  logDestination?: NodeJS.WritableStream;
  /** Extra modules mounted beside the features: e2e tests add probe routes this way. */
  extraModules?: Type[];
}

@Module({})
export class AppModule {
  static forRoot({ config, logDestination, extraModules = [] }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        config.module,
        LoggerModule.forRoot(loggerParams(config.values.app, logDestination)),
        DatabaseModule.forRoot(config.values.database),
        EventEmitterModule.forRoot(),
        // Runs the retention and purge intervals, and clears them all when the app shuts down.
        ScheduleModule.forRoot(),
        CommonModule,
        AuditModule,
        AuthModule,
        TokensModule,
        MailModule,
        HealthModule,
        PagesModule,
        TodosModule,
        AdminModule,
        MetricsModule,
        ...extraModules,
      ],
    };
  }
}
