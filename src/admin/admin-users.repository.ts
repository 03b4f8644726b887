import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type DataSource, type EntityManager, IsNull } from 'typeorm';
import { Session, type SessionRevokedReason } from '../auth/session.entity.js';
import { type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { User } from '../users/user.entity.js';

/** LIKE's wildcards and its escape character, escaped with '!' (SQLite has no default escape). */
const LIKE_SPECIAL = /[!%_]/g;

/**
 * What the operator tools need of the users and sessions tables, named by intent. Methods that
 * change a row take the caller's EntityManager so the change and its audit row commit together.
 */
@Injectable()
export class AdminUsersRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /** Newest accounts first; with a prefix, only emails starting with it (served by UQ_users_email). */
  search(emailPrefix: string | undefined, page: PageQueryDto): Promise<Page<User>> {
    const query = this.dataSource.getRepository(User).createQueryBuilder('user');
    if (emailPrefix) {
      query.where("user.email LIKE :pattern ESCAPE '!'", {
        pattern: `${emailPrefix.replace(LIKE_SPECIAL, (c) => `!${c}`)}%`,
      });
    }
    return paginate(query, page);
  }

  findById(id: number, manager: EntityManager): Promise<User | null> {
    return manager.getRepository(User).findOneBy({ id });
  }

  /** Sets disabled_at unless already set (the first disable time is the one kept). */
  async disable(id: number, at: Date, manager: EntityManager): Promise<void> {
    await manager.getRepository(User).update({ id, disabledAt: IsNull() }, { disabledAt: at });
  }

  async enable(id: number, manager: EntityManager): Promise<void> {
    await manager.getRepository(User).update({ id }, { disabledAt: null });
  }

  async unlock(id: number, manager: EntityManager): Promise<void> {
    await manager
      .getRepository(User)
      .update({ id }, { lockedUntil: null, failedLoginCount: 0, lockoutCount: 0 });
  }

  /**
   * Revokes every live session of the user; the access-token guard checks the session on each
   * request, so their access tokens stop working at once. Returns how many were revoked.
   */
  async revokeSessions(
    userId: number,
    reason: SessionRevokedReason,
    at: Date,
    manager: EntityManager,
  ): Promise<number> {
    const result = await manager
      .getRepository(Session)
      .update({ userId, revokedAt: IsNull() }, { revokedAt: at, revokedReason: reason });
    return result.affected ?? 0;
  }
}
