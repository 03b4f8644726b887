import { Column, type ColumnOptions, CreateDateColumn, UpdateDateColumn } from 'typeorm';

/**
 * Column shapes shared by every entity, so that MySQL (DATETIME(3), INT UNSIGNED) and SQLite agree
 * with the migrations: timestamps are UTC with millisecond precision.
 */
export const TimestampColumn = (options: ColumnOptions = {}) =>
  Column({ type: 'datetime', precision: 3, ...options });

export const CreatedAtColumn = (name = 'created_at') =>
  CreateDateColumn({ name, type: 'datetime', precision: 3 });

export const UpdatedAtColumn = (name = 'updated_at') =>
  UpdateDateColumn({ name, type: 'datetime', precision: 3 });

export const UserIdColumn = (options: ColumnOptions = {}) =>
  Column({ name: 'user_id', type: 'int', unsigned: true, ...options });
