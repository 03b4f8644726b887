import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import { CommonModule } from './common/common.module.js';
import { createAppLogger, loggerParams } from './common/logging.js';
import type { ValidatedConfig } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import type { Feature } from './database/schema.js';
import { EventsModule } from './events/events.module.js';
import { FEATURES, appSchema } from './features.js';

export interface AppModuleOptions {
  /** The environment as validated by the ConfigModule's hook: `await validateConfig(env)`. */
  config: ValidatedConfig;
  /** Where logs go; stdout when unset. Tests pass a stream to read what was logged. */
  logDestination?: NodeJS.WritableStream;
  /** The app's logger, shared with the HTTP adapter (createApp makes it); one from the above if unset. */
  logger?: Logger;
  /** Extra modules mounted beside the features: e2e tests add probe routes this way. */
  extraModules?: Type[];
  /** Features beyond src/features.ts, with their tables and migrations (a test fixture's, for one). */
  extraFeatures?: readonly Feature[];
}

@Module({})
export class AppModule {
  static forRoot({
    config,
    logDestination,
    logger = createAppLogger(config.values.app, logDestination),
    extraModules = [],
    extraFeatures = [],
  }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        config.module,
        LoggerModule.forRoot(loggerParams(logger)),
        DatabaseModule.forRoot(config.values.database, appSchema(extraFeatures)),
        EventsModule,
        // Runs the retention and purge intervals, and clears them all when the app shuts down.
        ScheduleModule.forRoot(),
        CommonModule,
        ...[...FEATURES, ...extraFeatures].map((feature) => feature.module),
        ...extraModules,
      ],
    };
  }
}
