import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { TimestampColumn } from '../database/columns.js';

/**
 * Consecutive failed sign-ins naming one address (by the SHA-256 of its normalized form, so an
 * address with no account counts exactly like one with an account, and no address is stored), per
 * client (`client`: an IPv4 address or an IPv6 /64) and account-wide (`client` = `*`). Kept in the
 * database so every instance sees the same counters with or without Redis (DESIGN §5, "Lockout is
 * not a weapon").
 */
@Entity({ name: 'login_failures' })
@Index('IDX_login_failures_updated_at', ['updatedAt'])
export class LoginFailure {
  @PrimaryColumn({ name: 'email_hash', type: 'varchar', length: 64 })
  emailHash!: string;

  @PrimaryColumn({ type: 'varchar', length: 64 })
  client!: string;

  @Column({ type: 'int', unsigned: true, default: 0 })
  failures!: number;

  /**
   * Checks of this address (from this client) admitted and not yet settled: each takes its place
   * under the threshold before its credential is checked. Trusted only while `updatedAt` is within a
   * lock period, so a process that died mid-check holds no place for longer.
   */
  @Column({ name: 'in_flight', type: 'int', unsigned: true, default: 0 })
  inFlight!: number;

  @TimestampColumn({ name: 'locked_until', nullable: true })
  lockedUntil!: Date | null;

  @TimestampColumn({ name: 'updated_at' })
  updatedAt!: Date;
}

/** The account-wide row's `client`. */
export const ANY_CLIENT = '*';
