import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { type EntityManager, IsNull, MoreThan, type Repository } from 'typeorm';
import { isMysqlFamily } from '../database/data-source.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { RefreshTokenHistory } from './refresh-token-history.entity.js';
import { Session, type SessionRevokedReason } from './session.entity.js';

/** Intent-named access to the sessions table; every query that touches one user's rows names the user. */
@Injectable()
export class SessionsRepository {
  constructor(
    @InjectRepository(Session) private readonly sessions: Repository<Session>,
    private readonly uow: UnitOfWork,
  ) {}

  private repo(manager?: EntityManager): Repository<Session> {
    return (manager ?? this.uow.tx).getRepository(Session);
  }

  /**
   * The caller behind an access token, or null when the session is revoked, expired or belongs to a
   * disabled account: one primary-key lookup joined to its user.
   */
  async findLiveCaller(sessionId: number, userId: number, now: Date): Promise<AuthUser | null> {
    // Hand-written SQL: this runs on every authenticated request, and TypeORM's query building and
    // hydration cost more than the query itself. Portable: `?` placeholders work on both drivers.
    const rows: { email: string; role: AuthUser['role']; is_verified: number | boolean }[] =
      await this.sessions.query(
        `SELECT u.email, u.role, u.is_verified
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ? AND s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.disabled_at IS NULL`,
        [sessionId, userId, this.timestamp(now)],
      );
    const row = rows[0];
    return row
      ? { id: userId, sessionId, email: row.email, role: row.role, isVerified: Boolean(row.is_verified) }
      : null;
  }

  /** A Date as the driver compares it: mysql2 binds Dates; better-sqlite3 stores UTC text with milliseconds. */
  private timestamp(date: Date): Date | string {
    return isMysqlFamily(this.sessions.manager.connection)
      ? date
      : date.toISOString().replace('T', ' ').replace('Z', '');
  }

  async insert(row: Partial<Session>, manager?: EntityManager): Promise<number> {
    const { identifiers } = await this.repo(manager).insert(row);
    return Number(identifiers[0].id);
  }

  findByRefreshHash(hash: string): Promise<Session | null> {
    return this.sessions.findOneBy({ refreshTokenHash: hash });
  }

  /** The session that once rotated this refresh token out, if any. */
  async findByRotatedOutHash(hash: string): Promise<Session | null> {
    const rotated = await this.sessions.manager.getRepository(RefreshTokenHistory).findOne({
      where: { tokenHash: hash },
      relations: { session: true },
    });
    return rotated?.session ?? null;
  }

  /** The rotation: one conditional UPDATE, so of two concurrent refreshes with one token at most one wins. */
  async rotate(
    sessionId: number,
    fromHash: string,
    toHash: string,
    now: Date,
    manager?: EntityManager,
  ): Promise<boolean> {
    const result = await this.repo(manager)
      .createQueryBuilder()
      .update()
      .set({ refreshTokenHash: toHash, lastUsedAt: now })
      .where('id = :sessionId', { sessionId })
      .andWhere('refresh_token_hash = :fromHash', { fromHash })
      .andWhere('revoked_at IS NULL')
      .andWhere('expires_at > :now', { now })
      .execute();
    if (result.affected !== 1) {
      return false;
    }
    await this.repo(manager)
      .manager.getRepository(RefreshTokenHistory)
      .insert({ tokenHash: fromHash, sessionId, rotatedAt: now });
    return true;
  }

  /** Revokes one of the user's live sessions; false when it is not theirs or already dead. */
  async revoke(
    userId: number,
    sessionId: number,
    reason: SessionRevokedReason,
    now: Date,
    manager?: EntityManager,
  ): Promise<boolean> {
    const result = await this.repo(manager)
      .createQueryBuilder()
      .update()
      .set({ revokedAt: now, revokedReason: reason })
      .where('id = :sessionId AND user_id = :userId', { sessionId, userId })
      .andWhere('revoked_at IS NULL')
      .execute();
    return result.affected === 1;
  }

  /** Revokes every live session of the user, optionally sparing one (the caller's own). */
  async revokeAll(
    userId: number,
    reason: SessionRevokedReason,
    now: Date,
    options: { except?: number; manager?: EntityManager } = {},
  ): Promise<number> {
    const query = this.repo(options.manager)
      .createQueryBuilder()
      .update()
      .set({ revokedAt: now, revokedReason: reason })
      .where('user_id = :userId', { userId })
      .andWhere('revoked_at IS NULL');
    if (options.except !== undefined) {
      query.andWhere('id <> :except', { except: options.except });
    }
    return (await query.execute()).affected ?? 0;
  }

  /** Deletes sessions that expired or were revoked before `cutoff`; their refresh history cascades. */
  async purgeEndedBefore(cutoff: Date): Promise<number> {
    const result = await this.sessions
      .createQueryBuilder()
      .delete()
      .where('expires_at < :cutoff OR revoked_at < :cutoff', { cutoff })
      .execute();
    return result.affected ?? 0;
  }

  listLive(userId: number, now: Date): Promise<Session[]> {
    return this.sessions.find({
      where: { userId, revokedAt: IsNull(), expiresAt: MoreThan(now) },
      order: { id: 'DESC' },
    });
  }
}
