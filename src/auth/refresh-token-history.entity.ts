import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../database/columns.js';
import { Session } from './session.entity.js';

/**
 * Every refresh token a session has rotated out (its SHA-256 only). Presenting any of them again
 * means a copy is in someone else's hands, and the session is revoked (DESIGN §5).
 */
@Entity({ name: 'refresh_token_history' })
@Index('IDX_refresh_token_history_session_id', ['sessionId'])
export class RefreshTokenHistory {
  @PrimaryColumn({ name: 'token_hash', type: 'varchar', length: 64 })
  tokenHash!: string;

  @Column({ name: 'session_id', type: 'int', unsigned: true })
  sessionId!: number;

  @ManyToOne(() => Session, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'session_id' })
  session?: Session;

  @TimestampColumn({ name: 'rotated_at' })
  rotatedAt!: Date;
}
