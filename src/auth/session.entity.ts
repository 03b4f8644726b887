import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, TimestampColumn, UserIdColumn } from '../database/columns.js';
import { User } from '../users/user.entity.js';

export type SessionRevokedReason =
  | 'logout'
  | 'logout_all'
  | 'revoked'
  | 'refresh_reused'
  | 'password_changed'
  | 'password_reset'
  | 'account_disabled'
  /** The account opened more than SESSIONS_PER_USER_MAX sessions: the oldest went. */
  | 'session_limit';

/** One row per login. The access token's `sid` points here; revoking the row kills the token at once. */
@Entity({ name: 'sessions' })
@Index('IDX_sessions_user_id', ['userId'])
@Index('UQ_sessions_refresh_token_hash', ['refreshTokenHash'], { unique: true })
export class Session {
  @PrimaryGeneratedColumn({ type: 'int', unsigned: true })
  id!: number;

  @UserIdColumn()
  userId!: number;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Column({ name: 'refresh_token_hash', type: 'varchar', length: 64 })
  refreshTokenHash!: string;

  /** Absolute: rotation never extends it. */
  @TimestampColumn({ name: 'expires_at' })
  expiresAt!: Date;

  @TimestampColumn({ name: 'revoked_at', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoked_reason', type: 'varchar', length: 32, nullable: true })
  revokedReason!: SessionRevokedReason | null;

  @CreatedAtColumn()
  createdAt!: Date;

  @TimestampColumn({ name: 'last_used_at', nullable: true })
  lastUsedAt!: Date | null;

  @Column({ type: 'varchar', length: 45, nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 255, nullable: true })
  userAgent!: string | null;
}
