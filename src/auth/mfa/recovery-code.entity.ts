import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, TimestampColumn, UserIdColumn } from '../../database/columns.js';
import { User } from '../../users/user.entity.js';

/** One TOTP recovery code (DESIGN §10): only its SHA-256 (bound to the account) is stored; it works once. */
@Entity({ name: 'mfa_recovery_codes' })
@Index('UQ_mfa_recovery_codes_user_code', ['userId', 'codeHash'], { unique: true })
export class RecoveryCode {
  @PrimaryGeneratedColumn({ type: 'int', unsigned: true })
  id!: number;

  @UserIdColumn()
  userId!: number;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id' })
  user?: User;

  @Column({ name: 'code_hash', type: 'varchar', length: 64 })
  codeHash!: string;

  @CreatedAtColumn()
  createdAt!: Date;

  @TimestampColumn({ name: 'used_at', nullable: true })
  usedAt!: Date | null;
}
