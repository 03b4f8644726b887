import { Injectable } from '@nestjs/common';
import { IsNull } from 'typeorm';
import type { AuthUser } from '../common/auth/auth-user.js';
import { type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { EntityRepository } from '../database/entity-repository.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { RefreshTokenHistory } from './refresh-token-history.entity.js';
import { Session, type SessionRevokedReason } from './session.entity.js';

/** What a new session starts with: the hash of its first refresh token, its absolute expiry, the device. */
export type NewSession = Pick<
  Session,
  'userId' | 'refreshTokenHash' | 'expiresAt' | 'createdAt' | 'lastUsedAt' | 'ip' | 'userAgent'
>;

/**
 * The sessions table and its refresh-token history, by intent; every statement that touches one
 * user's rows names the user, and joins the caller's unit of work when one is open.
 */
@Injectable()
export class SessionsRepository extends EntityRepository<Session> {
  constructor(uow: UnitOfWork) {
    super(uow, Session);
  }

  /**
   * The caller behind an access token, or null when the session is revoked, expired or belongs to a
   * disabled account: one primary-key lookup joined to its user.
   */
  async findLiveCaller(sessionId: number, userId: number, now: Date): Promise<AuthUser | null> {
    // Hand-written SQL: this runs on every authenticated request, and TypeORM's query building and
    // hydration cost more than the query itself. Portable: `?` placeholders work on both drivers.
    const rows = await this.rows<{ email: string; role: AuthUser['role']; is_verified: number | boolean }>(
      `SELECT u.email, u.role, u.is_verified
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ? AND s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.disabled_at IS NULL`,
      [sessionId, userId, this.raw.mysql ? now : sqliteTimestamp(now)],
    );
    const row = rows[0];
    return row
      ? { id: userId, sessionId, email: row.email, role: row.role, isVerified: Boolean(row.is_verified) }
      : null;
  }

  /** Inserts a new session; its id. */
  async open(session: NewSession): Promise<number> {
    const { identifiers } = await this.repo.insert(session);
    return Number(identifiers[0].id);
  }

  findByRefreshHash(hash: string): Promise<Session | null> {
    return this.repo.findOneBy({ refreshTokenHash: hash });
  }

  /** The session that once rotated this refresh token out, and when, if any. */
  async findRotatedOut(hash: string): Promise<{ session: Session; rotatedAt: Date } | null> {
    const rotated = await this.manager.getRepository(RefreshTokenHistory).findOne({
      where: { tokenHash: hash },
      relations: { session: true },
    });
    return rotated?.session ? { session: rotated.session, rotatedAt: rotated.rotatedAt } : null;
  }

  /**
   * The rotation: one conditional UPDATE, so of two concurrent refreshes with one token at most one
   * wins; the winner files the old token's hash in the history, where a replay will find it.
   */
  async rotate(sessionId: number, fromHash: string, toHash: string, now: Date): Promise<boolean> {
    const result = await this.repo
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
    await this.manager
      .getRepository(RefreshTokenHistory)
      .insert({ tokenHash: fromHash, sessionId, rotatedAt: now });
    return true;
  }

  /** Revokes one of the user's live sessions; false when it is not theirs or already dead. */
  async revoke(userId: number, sessionId: number, reason: SessionRevokedReason, now: Date): Promise<boolean> {
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ revokedAt: now, revokedReason: reason })
      .where('id = :sessionId AND user_id = :userId', { sessionId, userId })
      .andWhere('revoked_at IS NULL')
      .execute();
    return result.affected === 1;
  }

  /**
   * The ids revokeAll() would revoke now. On MySQL the rows stay locked until the unit of work ends
   * (call it inside one), so the list and the revocation that follows it name the same sessions.
   */
  async lockUnrevoked(userId: number, options: { except?: number } = {}): Promise<number[]> {
    const query = this.repo
      .createQueryBuilder('session')
      .select('session.id', 'id')
      .where('session.user_id = :userId', { userId })
      .andWhere('session.revoked_at IS NULL')
      .orderBy('session.id', 'ASC');
    if (options.except !== undefined) {
      query.andWhere('session.id <> :except', { except: options.except });
    }
    if (this.raw.mysql) {
      // SQLite has no row locks (and TypeORM refuses the clause there); its writers are serialized.
      query.setLock('pessimistic_write');
    }
    const rows = await query.getRawMany<{ id: number | string }>();
    return rows.map((row) => Number(row.id));
  }

  /** Revokes every live session of the user, optionally sparing one (the caller's own); how many. */
  async revokeAll(
    userId: number,
    reason: SessionRevokedReason,
    now: Date,
    options: { except?: number } = {},
  ): Promise<number> {
    const query = this.repo
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
    const result = await this.repo
      .createQueryBuilder()
      .delete()
      .where('expires_at < :cutoff OR revoked_at < :cutoff', { cutoff })
      .execute();
    return result.affected ?? 0;
  }

  /** One page of the user's sessions that still work, newest first. */
  listLive(userId: number, now: Date, page: PageQueryDto): Promise<Page<Session>> {
    const query = this.repo
      .createQueryBuilder('session')
      .where('session.user_id = :userId', { userId })
      .andWhere('session.revoked_at IS NULL')
      .andWhere('session.expires_at > :now', { now });
    return paginate(query, page);
  }

  /**
   * The user's unrevoked sessions beyond the newest `keep`, oldest first. No row lock: two logins at
   * once may each keep one more for a moment, and the next login trims them.
   */
  async unrevokedBeyond(userId: number, keep: number): Promise<number[]> {
    const rows = await this.repo.find({
      select: { id: true },
      where: { userId, revokedAt: IsNull() },
      order: { id: 'DESC' },
    });
    return rows
      .slice(keep)
      .map((row) => Number(row.id))
      .reverse();
  }

  /** Revokes these live sessions of the user; the ids it revoked (others were already dead). */
  async revokeMany(
    userId: number,
    sessionIds: number[],
    reason: SessionRevokedReason,
    now: Date,
  ): Promise<number> {
    if (sessionIds.length === 0) {
      return 0;
    }
    const result = await this.repo
      .createQueryBuilder()
      .update()
      .set({ revokedAt: now, revokedReason: reason })
      .where('user_id = :userId', { userId })
      .andWhere('id IN (:...sessionIds)', { sessionIds })
      .andWhere('revoked_at IS NULL')
      .execute();
    return result.affected ?? 0;
  }
}

/** A Date as better-sqlite3 compares it: the UTC text with milliseconds the columns store (mysql2 binds Dates). */
function sqliteTimestamp(date: Date): string {
  return date.toISOString().replace('T', ' ').replace('Z', '');
}
