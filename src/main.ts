import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { validateConfig } from './config/config.module.js';
import { ConfigError } from './config/env.js';

async function bootstrap(): Promise<void> {
  // ConfigModule reads .env and process.env and validates them before anything else is built.
  const config = await validateConfig();
  const { port, host, publicUrl } = config.values.app;
  const started = performance.now();
  const app = await createApp({ config });
  await app.listen(port, host);
  const logger = new Logger('Gatehouse');
  logger.log(
    `Gatehouse is listening on ${publicUrl} (started in ${Math.round(performance.now() - started)} ms); ` +
      `API docs: ${publicUrl}/docs`,
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
