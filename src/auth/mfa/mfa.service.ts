import { createHash, randomInt } from 'node:crypto';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../../audit/audit.service.js';
import type { AuthUser } from '../../common/auth/auth-user.js';
import { Clock } from '../../common/clock.js';
import { AppException } from '../../common/problem.js';
import type { RequestMeta } from '../../common/request-meta.js';
import type { Config } from '../../config/config.js';
import { Transactional, UnitOfWork } from '../../database/unit-of-work.js';
import { MailService } from '../../mail/mail.service.js';
import { PayloadCipher } from '../../mail/payload-cipher.js';
import { TokensService } from '../../tokens/tokens.service.js';
import { hasTotp, type User } from '../../users/user.entity.js';
import { UsersService } from '../../users/users.service.js';
import { AccountService } from '../account.service.js';
import { RecoveryCodesRepository } from './recovery-codes.repository.js';
import { matchTotp, newTotpSecret, otpauthUrl } from './totp.js';

/** How a second factor was proved. */
export type SecondFactorMethod = 'totp' | 'recovery_code';

/** Why a second factor was refused (for the audit row; clients hear MFA_INVALID / MFA_CODE_INVALID). */
export type SecondFactorFailure = 'code_invalid' | 'code_replayed' | 'recovery_code_invalid' | 'not_enabled';

/** Where a second factor was asked for, named on its audit rows. */
export type SecondFactorContext = 'login' | 'confirm' | 'disable';

export interface SecondFactorInput {
  code?: string;
  recoveryCode?: string;
}

/** 10 recovery codes of 12 base32 characters each: 60 bits (DESIGN §10 asks for ≥ 50). */
export const RECOVERY_CODE_COUNT = 10;
const RECOVERY_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const RECOVERY_LENGTH = 12;

export const TOTP_ISSUER = 'Gatehouse';

/** `xxxx-xxxx-xxxx`; case, spaces and dashes do not matter when typed back. */
export function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '');
}

/**
 * What is stored of a recovery code: the SHA-256 of the account id and the code. A plain hash is
 * enough for 60 random bits (no dictionary to try), and binding the account means one account's
 * code never matches another's row.
 */
export function recoveryCodeHash(userId: number, code: string): string {
  return createHash('sha256')
    .update(`${userId}:${normalizeRecoveryCode(code)}`)
    .digest('hex');
}

function newRecoveryCode(): string {
  let code = '';
  for (let i = 0; i < RECOVERY_LENGTH; i += 1) {
    code += RECOVERY_ALPHABET[randomInt(RECOVERY_ALPHABET.length)];
  }
  return code.match(/.{4}/g)!.join('-');
}

export function mfaInvalid(): AppException {
  return new AppException(HttpStatus.UNAUTHORIZED, 'MFA_INVALID', 'The code is not valid.');
}

/**
 * The TOTP second factor of an account (DESIGN §4 "Second factor", §10): set-up, confirmation with
 * recovery codes, turning it off, an operator's reset, and checking a code or a recovery code. The
 * secret is sealed at rest with the outbox payload cipher (AES-256-GCM, the account id as associated
 * data, so a sealed secret copied onto another account does not open).
 */
@Injectable()
export class MfaService {
  private readonly cipher: PayloadCipher;

  constructor(
    private readonly users: UsersService,
    private readonly accounts: AccountService,
    private readonly recoveryCodes: RecoveryCodesRepository,
    private readonly tokens: TokensService,
    private readonly mail: MailService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly uow: UnitOfWork,
    config: ConfigService<Config, true>,
  ) {
    this.cipher = new PayloadCipher(config.getOrThrow('mail', { infer: true }).payloadKeys);
  }

  /** A new pending secret; an active one keeps working until the new one is confirmed. */
  async setup(caller: AuthUser, meta: RequestMeta): Promise<{ secret: string; otpauthUrl: string }> {
    const user = await this.users.findById(caller.id);
    if (!user) {
      throw mfaInvalid();
    }
    const secret = newTotpSecret();
    await this.uow.withTransaction(async () => {
      await this.users.setTotpPending(user.id, this.seal(user.id, secret));
      await this.audit.record('mfa.setup_started', {
        userId: user.id,
        meta,
        metadata: { replacesActive: hasTotp(user) },
      });
    });
    return { secret, otpauthUrl: otpauthUrl(secret, TOTP_ISSUER, user.email) };
  }

  /**
   * Activates the pending secret with a code from it and returns 10 new recovery codes, shown once.
   * Replacing an active secret also needs `currentCode` (a code of the active secret, or a recovery
   * code): an access token alone must not move the second factor to someone else's phone.
   */
  async confirm(
    caller: AuthUser,
    code: string,
    currentCode: string | undefined,
    meta: RequestMeta,
  ): Promise<{ recoveryCodes: string[] }> {
    const user = await this.users.findByIdWithTotp(caller.id);
    if (!user?.totpPendingSecret) {
      throw new AppException(
        HttpStatus.BAD_REQUEST,
        'MFA_SETUP_REQUIRED',
        'Start with POST /auth/mfa/totp/setup: there is no secret waiting for confirmation.',
      );
    }
    const rekey = hasTotp(user);
    if (rekey) {
      if (currentCode === undefined) {
        throw new AppException(
          HttpStatus.BAD_REQUEST,
          'MFA_CURRENT_CODE_REQUIRED',
          'Two-step sign-in is on: send currentCode, a code of the active authenticator (or a recovery code).',
        );
      }
    }
    // The new authenticator's code is checked first (a pure check): a typo there must not spend the
    // current code or a recovery code.
    const pending = user.totpPendingSecret;
    const step = matchTotp(this.open(user.id, pending), code, this.clock.now().getTime());
    if (step === null) {
      await this.recordFailure(user.id, 'confirm', 'code_invalid', meta);
      throw codeInvalid();
    }
    if (rekey) {
      const current = await this.spend(user, asSecondFactor(currentCode as string), 'confirm', meta);
      if (typeof current !== 'object') {
        throw mfaInvalid();
      }
    }
    const recoveryCodes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    await this.uow.withTransaction(async () => {
      const now = this.clock.now();
      if (!(await this.users.activateTotp(user.id, pending, step, now))) {
        // A set-up that raced in replaced the pending secret: this code belongs to no pending secret.
        throw codeInvalid();
      }
      await this.recoveryCodes.replace(
        user.id,
        recoveryCodes.map((c) => recoveryCodeHash(user.id, c)),
        now,
      );
      await this.tokens.invalidateAll(user.id, 'mfa_login');
      await this.mail.enqueue('mfa-enabled', user.email, {});
      await this.audit.record('mfa.enabled', {
        userId: user.id,
        meta,
        metadata: { rekeyed: rekey, recoveryCodes: RECOVERY_CODE_COUNT },
      });
    });
    return { recoveryCodes };
  }

  /** Turns TOTP off with the password and a code (or a recovery code), and mails a notice. */
  async disable(caller: AuthUser, password: string, code: string, meta: RequestMeta): Promise<void> {
    const checked = await this.accounts.verifiedCaller(caller, password, meta, 'mfa.disable_failed');
    // The code is spent, and TOTP turned off, in one unit of work that holds the account's row while
    // the password checked above is still its own: a disable proved with a password the owner has
    // since changed does nothing, and leaves the code it was sent unspent. A wrong code commits only
    // its failure's audit row.
    const proved = await this.accounts.whileStillProved(checked, meta, 'mfa.disable_failed', async () => {
      const user = await this.users.findByIdWithTotp(caller.id);
      if (!user || !hasTotp(user)) {
        throw new AppException(HttpStatus.BAD_REQUEST, 'MFA_NOT_ENABLED', 'Two-step sign-in is not on.');
      }
      const outcome = await this.spend(user, asSecondFactor(code), 'disable', meta);
      if (typeof outcome === 'object') {
        await this.turnOff(user, meta, { via: outcome.method });
      }
      return outcome;
    });
    if (typeof proved !== 'object') {
      throw mfaInvalid();
    }
  }

  /**
   * An operator's reset (`POST /admin/users/{id}/mfa/reset`), inside the admin action's unit of work:
   * TOTP and its recovery codes go, the owner is mailed. Returns what the admin audit row records.
   */
  async resetByOperator(
    user: User,
    actorUserId: number,
    meta: RequestMeta,
  ): Promise<{ wasEnabled: boolean }> {
    return { wasEnabled: await this.turnOff(user, meta, { via: 'operator', actorUserId }) };
  }

  /**
   * Checks a TOTP code (±1 step, each step accepted once per account) or a recovery code (each works
   * once) and spends it. A recovery code used is audited as `auth.recovery_code_used`; a failure as
   * `auth.mfa_failed` here, except at login, where the sign-in pipeline records the refusal (with the
   * lockout count). Returns how it was proved, or why not.
   */
  async spend(
    user: User,
    input: SecondFactorInput,
    context: SecondFactorContext,
    meta: RequestMeta,
  ): Promise<{ method: SecondFactorMethod } | SecondFactorFailure> {
    const outcome = await this.check(user, input);
    if (typeof outcome === 'object') {
      if (outcome.method === 'recovery_code') {
        await this.audit.record('auth.recovery_code_used', {
          userId: user.id,
          meta,
          metadata: { context, remaining: await this.recoveryCodes.countUnused(user.id) },
        });
      }
      return outcome;
    }
    if (context !== 'login') {
      await this.recordFailure(user.id, context, outcome, meta);
    }
    return outcome;
  }

  private async check(
    user: User,
    input: SecondFactorInput,
  ): Promise<{ method: SecondFactorMethod } | SecondFactorFailure> {
    if (!hasTotp(user) || !user.totpSecret) {
      return 'not_enabled';
    }
    if (input.recoveryCode !== undefined) {
      const burnt = await this.recoveryCodes.consume(
        user.id,
        recoveryCodeHash(user.id, input.recoveryCode),
        this.clock.now(),
      );
      return burnt ? { method: 'recovery_code' } : 'recovery_code_invalid';
    }
    const step = matchTotp(this.open(user.id, user.totpSecret), input.code ?? '', this.clock.now().getTime());
    if (step === null) {
      return 'code_invalid';
    }
    return (await this.users.claimTotpStep(user.id, step)) ? { method: 'totp' } : 'code_replayed';
  }

  private async recordFailure(
    userId: number,
    context: SecondFactorContext,
    reason: SecondFactorFailure,
    meta: RequestMeta,
  ): Promise<void> {
    await this.audit.record('auth.mfa_failed', {
      userId,
      meta,
      outcome: 'failure',
      metadata: { context, reason },
    });
  }

  /**
   * The one way TOTP goes: the secrets, the recovery codes and any outstanding mfaToken, in one unit
   * of work (the caller's, if one is open). If it was on when the secrets went — decided by that
   * UPDATE, not by `user`, which an operator's reset read before a racing disable or confirm
   * committed — the owner is mailed and `mfa.disabled` audited, with the operator as actor when one
   * reset it. Returns whether it was on.
   */
  @Transactional()
  private async turnOff(
    user: User,
    meta: RequestMeta,
    { via, actorUserId }: { via: SecondFactorMethod | 'operator'; actorUserId?: number },
  ): Promise<boolean> {
    const wasOn = await this.users.clearTotp(user.id);
    await this.recoveryCodes.deleteAll(user.id);
    await this.tokens.invalidateAll(user.id, 'mfa_login');
    if (!wasOn) {
      return false;
    }
    await this.mail.enqueue(
      'mfa-disabled',
      user.email,
      actorUserId === undefined ? {} : { byOperator: 'yes' },
    );
    await this.audit.record('mfa.disabled', { userId: user.id, actorUserId, meta, metadata: { via } });
    return true;
  }

  private seal(userId: number, secret: string): string {
    return this.cipher.seal(secret, aad(userId));
  }

  private open(userId: number, sealed: string): string {
    return this.cipher.open(sealed, aad(userId));
  }
}

function aad(userId: number): string {
  return `gatehouse totp secret\n${userId}`;
}

/** One field that takes either a 6-digit code or a recovery code (DESIGN §4: disable's `code`). */
export function asSecondFactor(code: string): SecondFactorInput {
  return /^\d{6}$/.test(code) ? { code } : { recoveryCode: code };
}

function codeInvalid(): AppException {
  return new AppException(
    HttpStatus.BAD_REQUEST,
    'MFA_CODE_INVALID',
    'The code does not match the new secret; check the authenticator’s clock and try the current code.',
  );
}
