import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, TimestampColumn, UserIdColumn } from '../database/columns.js';
import { User } from '../users/user.entity.js';

/** Shared shape of the two single-use token tables: only the SHA-256 of a token is ever stored. */
abstract class OneTimeToken {
  @PrimaryGeneratedColumn({ name: 'token_id', type: 'int', unsigned: true })
  tokenId!: number;

  @UserIdColumn()
  userId!: number;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Column({ name: 'token_hash', type: 'varchar', length: 64 })
  tokenHash!: string;

  @TimestampColumn({ name: 'expiration_date' })
  expirationDate!: Date;

  @CreatedAtColumn()
  createdAt!: Date;

  @TimestampColumn({ name: 'used_at', nullable: true })
  usedAt!: Date | null;
}

@Entity({ name: 'email_verification_tokens' })
@Index('UQ_email_verification_tokens_token_hash', ['tokenHash'], { unique: true })
export class EmailVerificationToken extends OneTimeToken {
  /**
   * The password hash of the registration that asked for this link (never a raw password); verifying
   * with the link sets it. Null for a resend link, which carries no password (DESIGN §5).
   */
  @Column({ name: 'password_hash', type: 'varchar', length: 255, nullable: true, select: false })
  passwordHash!: string | null;
}

@Entity({ name: 'password_reset_tokens' })
@Index('UQ_password_reset_tokens_token_hash', ['tokenHash'], { unique: true })
export class PasswordResetToken extends OneTimeToken {}

/**
 * The mfaToken of a login waiting for its second factor (DESIGN §10): 5 minutes, single use, and
 * `attempts` counts the codes tried with it, so it dies after the fifth wrong one.
 */
@Entity({ name: 'mfa_login_tokens' })
@Index('UQ_mfa_login_tokens_token_hash', ['tokenHash'], { unique: true })
export class MfaLoginToken extends OneTimeToken {
  @Column({ type: 'int', unsigned: true, default: 0 })
  attempts!: number;
}
