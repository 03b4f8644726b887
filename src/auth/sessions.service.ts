import { randomBytes } from 'node:crypto';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Clock } from '../common/clock.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import { hashToken } from '../tokens/tokens.service.js';
import { AccessTokensService } from './access-tokens.service.js';
import './auth.events.js';
import type { Session, SessionRevokedReason } from './session.entity.js';
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
 * an absolute expiry rotation never extends, and reuse detection that kills the session. Every
 * revocation publishes `session.revoked` once its unit of work commits.
 */
@Injectable()
export class SessionsService {
  private readonly refreshTtlMs: number;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly sessions: SessionsRepository,
    private readonly accessTokens: AccessTokensService,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
  ) {
    this.refreshTtlMs = config.getOrThrow('auth', { infer: true }).refreshTtlMs;
  }

  /** Opens a session (in the caller's unit of work, when one is open) and returns its first token pair. */
  async open(userId: number, meta: RequestMeta): Promise<{ sessionId: number; tokens: TokenPair }> {
    const now = this.clock.now();
    const refreshToken = newRefreshToken();
    const sessionId = await this.sessions.open({
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
    const session = await this.sessions.findByRefreshHash(presented);
    if (session) {
      const next = newRefreshToken();
      if (await this.rotate(session, presented, next, meta)) {
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

  @Transactional()
  async logout(user: AuthUser, meta: RequestMeta): Promise<void> {
    if (await this.sessions.revoke(user.id, user.sessionId, 'logout', this.clock.now())) {
      this.revoked(user.id, [user.sessionId], 'logout');
    }
    await this.audit.record('auth.logout', {
      userId: user.id,
      meta,
      metadata: { sessionId: user.sessionId },
    });
  }

  @Transactional()
  async logoutAll(user: AuthUser, meta: RequestMeta): Promise<void> {
    const revoked = await this.revokeAll(user.id, 'logout_all');
    await this.audit.record('auth.logout_all', { userId: user.id, meta, metadata: { revoked } });
  }

  /**
   * Revokes every live session of the user (sparing `except`, the caller's own, when given) and
   * returns how many: what disabling an account or a new password does. Joins the caller's unit of
   * work; the caller writes its own audit row.
   */
  @Transactional()
  async revokeAll(
    userId: number,
    reason: SessionRevokedReason,
    options: { except?: number } = {},
  ): Promise<number> {
    const sessionIds = await this.sessions.lockUnrevoked(userId, options);
    if (sessionIds.length === 0) {
      return 0;
    }
    const revoked = await this.sessions.revokeAll(userId, reason, this.clock.now(), options);
    this.revoked(userId, sessionIds, reason);
    return revoked;
  }

  async list(user: AuthUser): Promise<(Session & { current: boolean })[]> {
    const sessions = await this.sessions.listLive(user.id, this.clock.now());
    return sessions.map((session) => Object.assign(session, { current: session.id === user.sessionId }));
  }

  /** Someone else's session and a missing one answer the same 404. */
  @Transactional()
  async revokeOne(user: AuthUser, sessionId: number, meta: RequestMeta): Promise<void> {
    if (!(await this.sessions.revoke(user.id, sessionId, 'revoked', this.clock.now()))) {
      throw new AppException(HttpStatus.NOT_FOUND, 'SESSION_NOT_FOUND', 'No such active session.');
    }
    await this.audit.record('session.revoked', { userId: user.id, meta, metadata: { sessionId } });
    this.revoked(user.id, [sessionId], 'revoked');
  }

  /** One rotation and its audit row; false when the token lost a race or its session is dead. */
  @Transactional()
  private async rotate(
    session: Session,
    presented: string,
    next: string,
    meta: RequestMeta,
  ): Promise<boolean> {
    if (!(await this.sessions.rotate(session.id, presented, hashToken(next), this.clock.now()))) {
      return false;
    }
    await this.audit.record('auth.refreshed', {
      userId: session.userId,
      meta,
      metadata: { sessionId: session.id },
    });
    return true;
  }

  @Transactional()
  private async revokeForReuse(session: Session, meta: RequestMeta): Promise<void> {
    const revoked = await this.sessions.revoke(
      session.userId,
      session.id,
      'refresh_reused',
      this.clock.now(),
    );
    await this.audit.record('auth.refresh_reused', {
      userId: session.userId,
      meta,
      outcome: 'failure',
      metadata: { sessionId: session.id },
    });
    if (revoked) {
      this.revoked(session.userId, [session.id], 'refresh_reused');
    }
  }

  private revoked(userId: number, sessionIds: number[], reason: SessionRevokedReason): void {
    this.events.publish('session.revoked', { userId, sessionIds, reason });
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

function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}
