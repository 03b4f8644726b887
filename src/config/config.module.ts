import type { DynamicModule } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { type Config, loadConfig } from './config.js';
import type { EnvRecord } from './env.js';

export interface ValidatedConfig {
  /** The global ConfigModule whose validate hook produced `values`; AppModule imports it. */
  module: DynamicModule;
  /** What `config.getOrThrow('auth', { infer: true })` and friends return, for wiring before Nest starts. */
  values: Config;
}

/**
 * Runs `@nestjs/config`'s validate hook over the environment and returns the module that serves the
 * result. Without `env`, ConfigModule gathers it itself (`.env` under the working directory, then
 * process.env, which wins), as `npm start` and the CLI need. With `env`, that record is the whole
 * environment and process.env is not read: tests boot several apps in one process, each with its own.
 *
 * The hook returns the typed namespaces (app, database, auth, tokens, mail, audit) rather than the
 * flat variables, so nothing is written back to process.env and secrets stay out of it.
 */
export async function validateConfig(env?: EnvRecord): Promise<ValidatedConfig> {
  let values: Config | undefined;
  const module = await ConfigModule.forRoot({
    isGlobal: true,
    ignoreEnvFile: env !== undefined,
    validatePredefined: env === undefined,
    validate: (gathered) => (values = loadConfig(env ?? (gathered as EnvRecord))),
  });
  if (values === undefined) {
    throw new Error('ConfigModule.forRoot returned without running its validate hook');
  }
  return { module, values };
}
