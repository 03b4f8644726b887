import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, type Repository } from 'typeorm';
import type { AuthUser } from './auth-user.js';
import { Session } from './session.entity.js';

/** Intent-named access to the sessions table. */
@Injectable()
export class SessionsRepository {
  constructor(@InjectRepository(Session) private readonly sessions: Repository<Session>) {}

  /**
   * The caller behind an access token, or null when the session is revoked, expired or belongs to a
   * disabled account: one primary-key lookup joined to its user.
   */
  async findLiveCaller(sessionId: number, userId: number, now: Date): Promise<AuthUser | null> {
    const session = await this.sessions.findOne({
      where: { id: sessionId, userId, revokedAt: IsNull() },
      relations: { user: true },
      select: {
        id: true,
        userId: true,
        expiresAt: true,
        user: { id: true, email: true, role: true, isVerified: true, disabledAt: true },
      },
    });
    if (!session?.user || session.expiresAt <= now || session.user.disabledAt !== null) {
      return null;
    }
    const { user } = session;
    return {
      id: user.id,
      sessionId: session.id,
      email: user.email,
      role: user.role,
      isVerified: user.isVerified,
    };
  }
}
