import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../database/columns.js';

/**
 * One budget window of one recipient: per mail kind (one per interval) and overall (`*`, a small
 * hourly cap). `recipient_key` is the SHA-256 of the canonical address, so case, `+tag` and IDN
 * variants share a row and the table holds no address in the clear.
 */
@Entity({ name: 'mail_budget' })
@Index('IDX_mail_budget_window_started_at', ['windowStartedAt'])
export class MailBudgetWindow {
  @PrimaryColumn({ name: 'recipient_key', type: 'varchar', length: 64 })
  recipientKey!: string;

  @PrimaryColumn({ type: 'varchar', length: 32 })
  kind!: string;

  @TimestampColumn({ name: 'window_started_at' })
  windowStartedAt!: Date;

  @Column({ type: 'int', unsigned: true })
  count!: number;

  /** A nonce naming the last reservation that succeeded: how a caller learns its upsert took a unit. */
  @Column({ name: 'taken_by', type: 'varchar', length: 32 })
  takenBy!: string;
}
