import type { UserRole } from '../common/auth/auth-user.js';
import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, TimestampColumn, UpdatedAtColumn } from '../database/columns.js';

@Entity({ name: 'users' })
@Index('UQ_users_email', ['email'], { unique: true })
@Index('UQ_users_username', ['username'], { unique: true })
export class User {
  @PrimaryGeneratedColumn({ type: 'int', unsigned: true })
  id!: number;

  /** Normalized (trimmed, lower-cased, NFC); immutable after creation. */
  @Column({ type: 'varchar', length: 255 })
  email!: string;

  /** Optional, stored lower-cased so uniqueness is case-insensitive. */
  @Column({ type: 'varchar', length: 50, nullable: true })
  username!: string | null;

  /** Never loaded unless asked for: only the auth module reads it. */
  @Column({ name: 'password_hash', type: 'varchar', length: 255, select: false })
  passwordHash!: string;

  @Column({ name: 'is_verified', type: 'boolean', default: false })
  isVerified!: boolean;

  @Column({ type: 'varchar', length: 16, default: 'user' })
  role!: UserRole;

  @TimestampColumn({ name: 'disabled_at', nullable: true })
  disabledAt!: Date | null;

  @CreatedAtColumn()
  createdAt!: Date;

  @UpdatedAtColumn()
  updatedAt!: Date;

  @TimestampColumn({ name: 'last_login_at', nullable: true })
  lastLoginAt!: Date | null;
}
