import { type DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { ClsPluginTransactional, TransactionHost } from '@nestjs-cls/transactional';
import { ClsModule } from 'nestjs-cls';
import type { DatabaseConfig } from '../config/config.js';
import { dataSourceOptions, openDataSource } from './data-source.js';
import type { Schema } from './schema.js';
import { UnitOfWork, UnitOfWorkAdapter } from './unit-of-work.js';

/** The DataSource (migrated at boot when configured) and the unit of work every repository joins. */
@Global()
@Module({})
export class DatabaseModule {
  static forRoot(config: DatabaseConfig, schema: Schema): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => dataSourceOptions(config, schema),
          dataSourceFactory: async () => {
            const dataSource = await openDataSource(config, schema);
            if (config.migrateOnStart) {
              await dataSource.runMigrations({ transaction: 'each' });
            }
            return dataSource;
          },
        }),
        ClsModule.forRoot({
          global: true,
          plugins: [
            new ClsPluginTransactional({
              adapter: new UnitOfWorkAdapter({ dataSourceToken: getDataSourceToken() }),
            }),
          ],
        }),
      ],
      providers: [{ provide: UnitOfWork, useExisting: TransactionHost }],
      exports: [UnitOfWork],
    };
  }
}
