import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';
import { TimestampColumn } from '../database/columns.js';

export type AuditOutcome = 'success' | 'failure';

/**
 * Append-only security trail. `user_id` has no foreign key on purpose: the trail outlives the account.
 * `metadata` is small and never holds a secret.
 */
@Entity({ name: 'audit_events' })
@Index('IDX_audit_events_user_id_id', ['userId', 'id'])
@Index('IDX_audit_events_event_id', ['event', 'id'])
@Index('IDX_audit_events_outcome_id', ['outcome', 'id'])
@Index('IDX_audit_events_occurred_at', ['occurredAt'])
export class AuditEvent {
  /** BIGINT on MySQL; drivers hand it back as a string, so it is typed as one. */
  @PrimaryGeneratedColumn({ type: 'bigint', unsigned: true })
  id!: string;

  @TimestampColumn({ name: 'occurred_at' })
  occurredAt!: Date;

  @Column({ type: 'varchar', length: 64 })
  event!: string;

  @Column({ type: 'varchar', length: 16 })
  outcome!: AuditOutcome;

  @Column({ name: 'user_id', type: 'int', unsigned: true, nullable: true })
  userId!: number | null;

  @Column({ name: 'actor_user_id', type: 'int', unsigned: true, nullable: true })
  actorUserId!: number | null;

  @Column({ type: 'varchar', length: 45, nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 255, nullable: true })
  userAgent!: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true })
  requestId!: string | null;

  @Column({ type: 'simple-json', nullable: true })
  metadata!: Record<string, unknown> | null;
}
