import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import { Command } from 'commander';
import { buildOpenApiDocument, createApp } from './app.factory.js';
import { AppModule } from './app.module.js';
import { validateConfig } from './config/config.module.js';
import { ConfigError } from './config/env.js';
import { databaseKind, openDataSource } from './database/data-source.js';
import { checkMigrations, schemaDiff, withScratchDatabase } from './database/schema-check.js';
import { appSchema } from './features.js';
import { UsersService } from './users/users.service.js';

/** The same validated environment `npm start` gets (.env, then process.env). */
async function config() {
  return (await validateConfig()).values;
}

const program = new Command('gatehouse').description('Gatehouse operator commands').showHelpAfterError();

program
  .command('migration:run')
  .description('apply every pending migration to DATABASE_URL')
  .action(async () => {
    const dataSource = await openDataSource((await config()).database, appSchema());
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    console.log(
      applied.length ? `Applied: ${applied.map((m) => m.name).join(', ')}` : 'No pending migrations.',
    );
    await dataSource.destroy();
  });

program
  .command('migration:revert')
  .description('revert the last applied migration on DATABASE_URL')
  .action(async () => {
    const dataSource = await openDataSource((await config()).database, appSchema());
    await dataSource.undoLastMigration({ transaction: 'each' });
    console.log('Reverted the last migration.');
    await dataSource.destroy();
  });

program
  .command('migration:check')
  .description(
    'fail unless the migrations, applied to a scratch database, match the entities (and revert cleanly)',
  )
  .action(async () => {
    const { database } = await config();
    const problems = await checkMigrations(database, appSchema());
    if (problems.length > 0) {
      console.error(
        `Entities and migrations disagree on ${databaseKind(database.url)}:\n${problems.join('\n')}`,
      );
      process.exitCode = 1;
      return;
    }
    console.log(
      `migration:check: entities and migrations agree on ${databaseKind(database.url)} (down and up again included).`,
    );
  });

program
  .command('migration:generate')
  .argument('<name>', 'PascalCase name of the migration')
  .description(
    'write a migration stub holding the SQL that would bring the migrated schema up to the entities',
  )
  .action(async (name: string) => {
    const { database } = await config();
    const diff = await withScratchDatabase(database, appSchema(), async (dataSource) => {
      await dataSource.runMigrations({ transaction: 'each' });
      return schemaDiff(dataSource);
    });
    if (diff.up.length === 0) {
      console.log('No changes: entities and migrations agree.');
      return;
    }
    const timestamp = Date.now();
    const file = `migrations/${timestamp}-${name}.ts`;
    const comment = (lines: string[]) => lines.map((l) => `    // ${l}`).join('\n');
    writeFileSync(
      file,
      `import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Generated from the ${databaseKind(database.url)} schema diff. Rewrite the statements below with TypeORM's
 * portable Table/TableColumn/TableIndex API so the migration runs on MySQL and SQLite alike, then
 * register it in migrations/index.ts and run \`npm run migration:check\` on both.
 */
export class ${name}${timestamp} implements MigrationInterface {
  name = '${name}${timestamp}';

  async up(_q: QueryRunner): Promise<void> {
${comment(diff.up)}
  }

  async down(_q: QueryRunner): Promise<void> {
${comment(diff.down)}
  }
}
`,
    );
    console.log(`Wrote ${file}`);
  });

program
  .command('openapi')
  .option('-o, --out <file>', 'where to write the document', 'openapi.json')
  .description('write the OpenAPI document the running app serves at /docs/openapi.json')
  .action(async ({ out }: { out: string }) => {
    const app = await createApp({
      config: await validateConfig({
        NODE_ENV: 'test',
        DATABASE_URL: 'sqlite::memory:',
        LOG_LEVEL: 'silent',
      }),
    });
    await app.init();
    writeFileSync(out, `${JSON.stringify(buildOpenApiDocument(app), null, 2)}\n`);
    await app.close();
    console.log(`Wrote ${out}`);
  });

program
  .command('users:promote')
  .argument('<email>', 'the account to make an administrator')
  .description('grant the admin role to an existing account (how the first operator is made)')
  .action(async (email: string) => {
    // The app's own module graph, without HTTP: the same service, transaction and audit row as a route.
    const app = await NestFactory.createApplicationContext(
      AppModule.forRoot({ config: await validateConfig() }),
      {
        logger: false,
        abortOnError: false,
      },
    );
    try {
      console.log(await app.get(UsersService).promote(email));
    } finally {
      await app.close();
    }
  });

program.parseAsync().catch((error: unknown) => {
  console.error(
    error instanceof ConfigError ? error.message : error instanceof Error ? error.message : error,
  );
  process.exit(1);
});
