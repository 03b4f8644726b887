import { type DynamicModule, Module, type Type } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { LoggerModule } from 'nestjs-pino';
import { CommonModule } from './common/common.module.js';
import { loggerParams } from './common/logging.js';
import type { Config } from './config/config.js';
import { DatabaseModule } from './database/database.module.js';
import type { Feature } from './database/schema.js';
import { EventsModule } from './events/events.module.js';
import { FEATURES, appSchema } from './features.js';

export interface AppModuleOptions {
  config: Config;
  /** Where logs go; stdout when unset. Tests pass a stream to read what was logged. */
  logDestination?: NodeJS.WritableStream;
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
    extraModules = [],
    extraFeatures = [],
  }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ ...config })] }),
        LoggerModule.forRoot(loggerParams(config.app, logDestination)),
        DatabaseModule.forRoot(config.database, appSchema(extraFeatures)),
        EventsModule,
        CommonModule,
        ...[...FEATURES, ...extraFeatures].map((feature) => feature.module),
        ...extraModules,
      ],
    };
  }
}
