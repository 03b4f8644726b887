import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { ConfigError } from './config/env.js';
import { loadConfig } from './config/config.js';

async function bootstrap(): Promise<void> {
  if (existsSync('.env')) {
    process.loadEnvFile('.env');
  }
  const config = loadConfig(process.env);
  const started = performance.now();
  const app = await createApp({ config });
  await app.listen(config.app.port, config.app.host);
  const logger = new Logger('Gatehouse');
  logger.log(
    `Gatehouse is listening on ${config.app.publicUrl} (started in ${Math.round(performance.now() - started)} ms); ` +
      `API docs: ${config.app.publicUrl}/docs`,
  );
}

bootstrap().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    console.error(error.message);
  } else {
    console.error('Gatehouse failed to start:', error);
  }
  process.exit(1);
});
