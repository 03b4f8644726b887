import { Injectable } from '@nestjs/common';
import { AuditService } from '../../audit/audit.service.js';
import type { AppException } from '../../common/problem.js';
import type { RequestMeta } from '../../common/request-meta.js';
import { MFA_TOKEN_TTL_MS } from '../../tokens/token-purposes.js';
import { TokensService } from '../../tokens/tokens.service.js';
import type { User } from '../../users/user.entity.js';
import { UsersService } from '../../users/users.service.js';
import { CredentialGate } from '../credential-gate.service.js';
import {
  invalidCredentials,
  type LoginFailureReason,
  type SignedIn,
  SignInService,
} from '../sign-in.service.js';
import { MfaService, mfaInvalid, type SecondFactorInput } from './mfa.service.js';
import { UnitOfWork } from '../../database/unit-of-work.js';

/** What login answers, instead of tokens, for an account with TOTP after a correct password. */
export interface MfaChallenge {
  mfaRequired: true;
  mfaToken: string;
  /** Seconds the mfaToken stays usable. */
  expiresIn: number;
}

/**
 * The second step of a login with TOTP (`POST /auth/login/mfa`). The mfaToken stands for "this
 * account's password was just given"; it is single use, 5 minutes, and dies after 5 codes tried.
 * Each code is checked through the CredentialGate like a password, so wrong codes count toward the
 * lockout of DESIGN §5 exactly like wrong passwords — per (account, client) and account-wide, admitted
 * before they are checked — the same caps hold, and a correct password alone never resets the
 * count on an account with TOTP (else whoever has the password could guess codes forever, four at a
 * time). Only the second factor, once proved, starts the count over. The session comes from the one
 * sign-in pipeline, like a password login's.
 */
@Injectable()
export class MfaLoginService {
  constructor(
    private readonly users: UsersService,
    private readonly tokens: TokensService,
    private readonly mfa: MfaService,
    private readonly signIn: SignInService,
    private readonly gate: CredentialGate,
    private readonly audit: AuditService,
    private readonly uow: UnitOfWork,
  ) {}

  /** After a correct password: a challenge instead of a session (refused first if the account may not sign in). */
  async challenge(user: User, meta: RequestMeta): Promise<MfaChallenge> {
    await this.signIn.assertMaySignIn(user, { method: 'password', meta });
    const mfaToken = await this.issueWhilePasswordIs(user);
    if (mfaToken === null) {
      return this.signIn.refuseChanged(user.id, { method: 'password', meta }, invalidCredentials);
    }
    await this.audit.record('auth.mfa_required', { userId: user.id, meta });
    return { mfaRequired: true, mfaToken, expiresIn: MFA_TOKEN_TTL_MS / 1000 };
  }

  /**
   * An mfaToken, issued while the account's row is held with the password hash the password was
   * checked against, and not disabled; null if a password change or a disable committed since. A
   * change that comes after waits for the row and then kills the token with every other mfaToken of
   * the account.
   */
  private issueWhilePasswordIs(user: User): Promise<string | null> {
    return this.uow.withTransaction(async () =>
      (await this.users.holdIfPasswordIs(user.id, user.passwordHash))
        ? this.tokens.issue('mfa_login', user.id)
        : null,
    );
  }

  finish(mfaToken: string, input: SecondFactorInput, meta: RequestMeta): Promise<SignedIn> {
    return this.signIn.attempt(() => this.attempt(mfaToken, input, meta));
  }

  private async attempt(mfaToken: string, input: SecondFactorInput, meta: RequestMeta): Promise<SignedIn> {
    const method = input.recoveryCode !== undefined ? 'recovery_code' : 'totp';
    const attempt = await this.tokens.spendMfaAttempt(mfaToken);
    if (!attempt.ok) {
      return this.refuse(attempt.userId, 'mfa_token_invalid', method, meta, mfaInvalid(), {
        state: attempt.reason,
      });
    }
    const user = await this.users.findByIdWithTotp(attempt.userId);
    if (!user) {
      return this.refuse(null, 'mfa_token_invalid', method, meta, mfaInvalid(), { state: 'unknown' });
    }
    const check = await this.gate.enter({ email: user.email, userId: user.id, method, meta });
    // The factor is spent and the token burnt in one unit of work: of two requests that both proved a
    // factor on one token (two recovery codes, say), one signs in and the other's spend rolls back, so
    // its recovery code still works (and, proved, it counts as no failure).
    let proved: Awaited<ReturnType<MfaService['spend']>>;
    try {
      proved = await check.run(() =>
        this.uow.withTransaction(async () => {
          const spent = await this.mfa.spend(user, input, 'login', meta);
          if (typeof spent === 'object' && !(await this.tokens.burn('mfa_login', mfaToken))) {
            throw new TokenAlreadyBurnt();
          }
          return spent;
        }),
      );
    } catch (error) {
      if (error instanceof TokenAlreadyBurnt) {
        return this.refuse(user.id, 'mfa_token_invalid', method, meta, mfaInvalid(), { state: 'used' });
      }
      throw error;
    }
    if (typeof proved !== 'object') {
      return check.refuse('mfa_invalid', mfaInvalid(), { failure: proved });
    }
    await check.proved();
    // A password change since step one killed this mfaToken: the session does not open either.
    return this.signIn.complete(user, { method: proved.method, meta }, mfaInvalid);
  }

  private refuse(
    userId: number | null,
    reason: LoginFailureReason,
    method: 'totp' | 'recovery_code',
    meta: RequestMeta,
    answer: AppException,
    details?: Record<string, unknown>,
  ): Promise<never> {
    return this.signIn.refuse({ userId, reason, method, meta, details }, answer);
  }
}

/** Thrown inside the unit of work to roll back a spent factor when another request burnt the token first. */
class TokenAlreadyBurnt extends Error {}
