import { JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, UpdatedAtColumn, UserIdColumn } from '../database/columns.js';
import { User } from '../users/user.entity.js';
import type { OwnedRow } from './owned.repository.js';

/**
 * The columns every user-owned table has, matching `createOwnedTable()` in its migration: an id, the
 * owner (deleted with the account), and the system-managed timestamps. An entity extends this and
 * adds its own columns and `@Index('IDX_<table>_user_id_id', ['userId', 'id'])` for its list.
 */
export abstract class OwnedEntity implements OwnedRow {
  @PrimaryGeneratedColumn({ type: 'int', unsigned: true })
  id!: number;

  @UserIdColumn()
  userId!: number;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @CreatedAtColumn()
  createdAt!: Date;

  @UpdatedAtColumn()
  updatedAt!: Date;
}
