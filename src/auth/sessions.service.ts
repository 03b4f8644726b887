import { createHmac, randomBytes } from 'node:crypto';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { Clock } from '../common/clock.js';
import { mapPage, type Page, type PageQueryDto } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import { retryOnDeadlock } from '../database/driver-errors.js';
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

/** How many rotations a replay within the grace may be behind the session's current token. */
const MAX_GRACE_STEPS = 8;

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
 *
 * Refresh races (DESIGN §5): a session's refresh tokens form a chain — the first is random, each next
 * one is an HMAC of the one before under a server key. So when two tabs refresh with one token, the
 * loser, presenting a token rotated out less than `REFRESH_GRACE` ago, is handed the very token the
 * winner got (recomputed, never stored) with a fresh access token: both tabs keep one working
 * session, and the next rotation by either moves both along. The same token presented after the
 * grace is reuse: the session is revoked and `auth.refresh_reused` audited.
 */
@Injectable()
export class SessionsService {
  private readonly refreshTtlMs: number;
  private readonly refreshGraceMs: number;
  private readonly chainKey: Buffer;
  private readonly maxPerUser: number;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly sessions: SessionsRepository,
    private readonly accessTokens: AccessTokensService,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
  ) {
    const auth = config.getOrThrow('auth', { infer: true });
    this.refreshTtlMs = auth.refreshTtlMs;
    this.refreshGraceMs = auth.refreshGraceMs;
    this.maxPerUser = auth.sessionsPerUserMax;
    this.chainKey = createHmac('sha256', auth.jwtSecret).update('gatehouse refresh-token chain v1').digest();
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
    await this.enforceLimit(userId, meta, now);
    return { sessionId, tokens: await this.pair(userId, sessionId, refreshToken) };
  }

  /**
   * At most SESSIONS_PER_USER_MAX sessions per account (DESIGN §5, "Bounded by design"): a new one
   * beyond it revokes the oldest, audited as `session.revoked` with reason `session_limit`.
   */
  private async enforceLimit(userId: number, meta: RequestMeta, now: Date): Promise<void> {
    const oldest = await this.sessions.unrevokedBeyond(userId, this.maxPerUser);
    if (oldest.length === 0) {
      return;
    }
    if ((await this.sessions.revokeMany(userId, oldest, 'session_limit', now)) > 0) {
      await this.audit.record('session.revoked', {
        userId,
        meta,
        metadata: { sessionIds: oldest, reason: 'session_limit' },
      });
      this.revoked(userId, oldest, 'session_limit');
    }
  }

  async refresh(refreshToken: string, meta: RequestMeta): Promise<TokenPair> {
    if (!REFRESH_SHAPE.test(refreshToken)) {
      throw refreshInvalid();
    }
    const presented = hashToken(refreshToken);
    const session = await this.sessions.findByRefreshHash(presented);
    if (session) {
      const next = this.successor(session.id, refreshToken);
      // Concurrent refreshes of one session can deadlock on MySQL (the row update against the history
      // insert's foreign-key check); InnoDB rolled the victim's whole transaction back, so it is taken
      // again: it then rotates, or finds the token rotated out by the winner and takes the grace path.
      if (await retryOnDeadlock(() => this.rotate(session, presented, next, meta))) {
        return this.pair(session.userId, session.id, next);
      }
    }
    // A token this session already rotated out: two refreshes raced with one token (within the
    // grace), or it was copied — then the session can no longer be trusted (RFC 9700 §4.14.2).
    const rotatedOut = await this.sessions.findRotatedOut(presented);
    if (!rotatedOut || rotatedOut.session.revokedAt !== null) {
      throw refreshInvalid();
    }
    const current = this.currentWithinGrace(rotatedOut, refreshToken);
    if (current !== null) {
      const { userId, id: sessionId } = rotatedOut.session;
      await this.audit.record('auth.refresh_replayed', { userId, meta, metadata: { sessionId } });
      return this.pair(userId, sessionId, current);
    }
    await retryOnDeadlock(() => this.revokeForReuse(rotatedOut.session, meta));
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

  async list(user: AuthUser, page: PageQueryDto): Promise<Page<Session & { current: boolean }>> {
    const sessions = await this.sessions.listLive(user.id, this.clock.now(), page);
    return mapPage(sessions, (session) => Object.assign(session, { current: session.id === user.sessionId }));
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

  /** The next token of a session's chain: an HMAC of the one before, so a replay can recompute it. */
  private successor(sessionId: number, refreshToken: string): string {
    return createHmac('sha256', this.chainKey).update(`${sessionId}:${refreshToken}`).digest('base64url');
  }

  /**
   * The session's current refresh token when `refreshToken` was rotated out less than the grace ago
   * (found by walking the chain forward a few steps), else null.
   */
  private currentWithinGrace(
    { session, rotatedAt }: { session: Session; rotatedAt: Date },
    refreshToken: string,
  ): string | null {
    const now = this.clock.now().getTime();
    if (now - rotatedAt.getTime() >= this.refreshGraceMs || session.expiresAt.getTime() <= now) {
      return null;
    }
    let candidate = refreshToken;
    for (let step = 0; step < MAX_GRACE_STEPS; step++) {
      candidate = this.successor(session.id, candidate);
      if (hashToken(candidate) === session.refreshTokenHash) {
        return candidate;
      }
    }
    return null;
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
