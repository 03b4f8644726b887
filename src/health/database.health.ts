import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { HealthIndicatorService } from '@nestjs/terminus';
import type { DataSource } from 'typeorm';

/**
 * Pings the database with a time limit. Written against the DataSource directly rather than
 * terminus's TypeORM indicator, which probes for packages with require() and so cannot load in
 * Jest's ESM mode.
 */
@Injectable()
export class DatabaseHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  ping(key = 'database', timeoutMs = 2000) {
    return this.indicators
      .check(key)
      .attempt(async () => {
        if (!this.dataSource.isInitialized) {
          throw new Error('not connected');
        }
        await this.dataSource.query('SELECT 1');
        return {};
      })
      .withTimeout(timeoutMs);
  }
}
