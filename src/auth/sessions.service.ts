import { randomBytes } from 'node:crypto';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { hashToken } from '../tokens/tokens.service.js';
import { AccessTokensService } from './access-tokens.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import type { Session } from './session.entity.js';
import type { SessionRevokedReason } from './session.entity.js';
import { SessionsRepository } from './sessions.repository.js';

/** What login and refresh hand back to the client. */
export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

const REFRESH_SHAPE = /^[A-Za-z0-9_-]{43}$/;

function refreshInvalid(): AppException {
  return new AppException(
    HttpStatus.UNAUTHORIZED,
    'REFRESH_INVALID',
    'The refresh token is invalid, expired or revoked.',
  );
}

/**
 * Sessions: one per login, an opaque refresh token rotated on every use (only its SHA-256 is stored),
 * an absolute expiry rotation never extends, and reuse detection that kills the session.
 */
@Injectable()
export class SessionsService {
  private readonly refreshTtlMs: number;

  constructor(
    private readonly sessions: SessionsRepository,
    private readonly accessTokens: AccessTokensService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly uow: UnitOfWork,
    config: ConfigService<Config, true>,
  ) {
    this.refreshTtlMs = config.getOrThrow('auth', { infer: true }).refreshTtlMs;
  }

  /** Opens a session inside the caller's transaction and returns its first token pair. */
  async open(userId: number, meta: RequestMeta): Promise<{ sessionId: number; tokens: TokenPair }> {
    const now = this.clock.now();
    const refreshToken = randomBytes(32).toString('base64url');
    const sessionId = await this.sessions.insert({
      userId,
      refreshTokenHash: hashToken(refreshToken),
      expiresAt: new Date(now.getTime() + this.refreshTtlMs),
      createdAt: now,
      lastUsedAt: now,
      ip: meta.ip,
      userAgent: meta.userAgent,
    });
    return { sessionId, tokens: await this.pair(userId, sessionId, refreshToken) };
  }

  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    if (!REFRESH_SHAPE.test(refreshToken)) {
      throw refreshInvalid();
    }
    const presented = hashToken(refreshToken);
    const now = this.clock.now();
    const session = await this.sessions.findByRefreshHash(presented);
    if (session) {
      const next = randomBytes(32).toString('base64url');
      const rotated = await this.uow.withTransaction(async () => {
        if (!(await this.sessions.rotate(session.id, presented, hashToken(next), now))) {
          return false;
        }
        await this.audit.record('auth.refreshed', {
          userId: session.userId,
          meta,
          metadata: { sessionId: session.id },
        });
        return true;
      });
      if (rotated) {
        return this.pair(session.userId, session.id, next);
      }
    }
    // A token this session already rotated out: it was copied, or two refreshes raced with one
    // token. Either way the session can no longer be trusted (RFC 9700 §4.14.2).
    const rotatedOut = await this.sessions.findByRotatedOutHash(presented);
    if (rotatedOut && rotatedOut.revokedAt === null) {
      await this.revokeForReuse(rotatedOut, meta);
    }
    throw refreshInvalid();
  }

  async logout(user: AuthUser, meta: RequestMeta): Promise<void> {
    await this.uow.withTransaction(async () => {
      await this.sessions.revoke(user.id, user.sessionId, 'logout', this.clock.now());
      await this.audit.record('auth.logout', {
        userId: user.id,
        meta,
        metadata: { sessionId: user.sessionId },
      });
    });
  }

  /** Revokes every live session of the user (joins the caller's unit of work); returns how many. */
  revokeAll(userId: number, reason: SessionRevokedReason): Promise<number> {
    return this.sessions.revokeAll(userId, reason, this.clock.now());
  }

  async logoutAll(user: AuthUser, meta: RequestMeta): Promise<void> {
    await this.uow.withTransaction(async () => {
      const revoked = await this.sessions.revokeAll(user.id, 'logout_all', this.clock.now());
      await this.audit.record('auth.logout_all', { userId: user.id, meta, metadata: { revoked } });
    });
  }

  async list(user: AuthUser): Promise<(Session & { current: boolean })[]> {
    const sessions = await this.sessions.listLive(user.id, this.clock.now());
    return sessions.map((session) => Object.assign(session, { current: session.id === user.sessionId }));
  }

  /** Someone else's session and a missing one answer the same 404. */
  async revokeOne(user: AuthUser, sessionId: number, meta: RequestMeta): Promise<void> {
    await this.uow.withTransaction(async () => {
      if (!(await this.sessions.revoke(user.id, sessionId, 'revoked', this.clock.now()))) {
        throw new AppException(HttpStatus.NOT_FOUND, 'SESSION_NOT_FOUND', 'No such active session.');
      }
      await this.audit.record('session.revoked', { userId: user.id, meta, metadata: { sessionId } });
    });
  }

  private async revokeForReuse(session: Session, meta: RequestMeta): Promise<void> {
    await this.uow.withTransaction(async () => {
      await this.sessions.revoke(session.userId, session.id, 'refresh_reused', this.clock.now());
      await this.audit.record('auth.refresh_reused', {
        userId: session.userId,
        meta,
        outcome: 'failure',
        metadata: { sessionId: session.id },
      });
    });
  }

  private async pair(userId: number, sessionId: number, refreshToken: string): Promise<TokenPair> {
    return {
      accessToken: await this.accessTokens.sign(userId, sessionId),
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.accessTokens.ttlSeconds,
    };
  }
}
