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

  /** When the TOTP second factor was turned on, or null (DESIGN §10); the only TOTP field loaded by default. */
  @TimestampColumn({ name: 'totp_enabled_at', nullable: true })
  totpEnabledAt!: Date | null;

  /** The active TOTP secret, sealed (AES-256-GCM, like outbox payloads); never loaded unless asked for. */
  @Column({ name: 'totp_secret', type: 'varchar', length: 255, nullable: true, select: false })
  totpSecret!: string | null;

  /** A secret from set-up awaiting its first code; the active one stays until it is confirmed. */
  @Column({ name: 'totp_pending_secret', type: 'varchar', length: 255, nullable: true, select: false })
  totpPendingSecret!: string | null;

  /** The last TOTP time step accepted: a code of this step or an earlier one never works again. */
  @Column({ name: 'totp_last_step', type: 'int', unsigned: true, nullable: true, select: false })
  totpLastStep!: number | null;
}

/** Whether sign-in asks this account for a second factor: the one test every reader of the flag uses. */
export function hasTotp(user: Pick<User, 'totpEnabledAt'>): boolean {
  return user.totpEnabledAt !== null && user.totpEnabledAt !== undefined;
}
