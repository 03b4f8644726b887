import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { CreatedAtColumn, TimestampColumn } from '../database/columns.js';

export type OutboxStatus = 'pending' | 'sent' | 'dead';

/**
 * A message waiting for the outbox worker. It is written in the same transaction as the change it
 * belongs to; `locked_by` / `locked_until` let one worker claim it exclusively.
 */
@Entity({ name: 'mail_outbox' })
@Index('IDX_mail_outbox_status_next_attempt_at', ['status', 'nextAttemptAt'])
export class OutboxMessage {
  @PrimaryGeneratedColumn({ type: 'int', unsigned: true })
  id!: number;

  @Column({ type: 'varchar', length: 64 })
  template!: string;

  @Column({ type: 'varchar', length: 255 })
  recipient!: string;

  /** JSON; anything secret in it is encrypted at rest and erased once the message is sent. */
  @Column({ type: 'text' })
  payload!: string;

  @Column({ type: 'varchar', length: 16, default: 'pending' })
  status!: OutboxStatus;

  @Column({ type: 'int', unsigned: true, default: 0 })
  attempts!: number;

  @TimestampColumn({ name: 'next_attempt_at' })
  nextAttemptAt!: Date;

  @Column({ name: 'last_error', type: 'varchar', length: 1000, nullable: true })
  lastError!: string | null;

  @Column({ name: 'locked_by', type: 'varchar', length: 64, nullable: true })
  lockedBy!: string | null;

  @TimestampColumn({ name: 'locked_until', nullable: true })
  lockedUntil!: Date | null;

  @CreatedAtColumn()
  createdAt!: Date;

  @TimestampColumn({ name: 'sent_at', nullable: true })
  sentAt!: Date | null;
}
