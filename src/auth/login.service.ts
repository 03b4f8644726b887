import { Injectable } from '@nestjs/common';
import type { RequestMeta } from '../common/request-meta.js';
import { hasTotp } from '../users/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { CredentialGate } from './credential-gate.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { type MfaChallenge, MfaLoginService } from './mfa/mfa-login.service.js';
import { invalidCredentials, type SignedIn, SignInService } from './sign-in.service.js';

/**
 * Password login: what is specific to passwords, then the sign-in pipeline (SignInService). An
 * unknown email and a wrong password give the same answer and cost the same one bcrypt comparison;
 * "not verified" and "disabled" are only said after a correct password. The password is checked
 * through the CredentialGate, under the lockout counted per (address, client) and account-wide, under
 * a hash of the address, so a known and an unknown address walk through exactly the same counters,
 * statuses, headers and periods.
 */
@Injectable()
export class LoginService {
  constructor(
    private readonly users: UsersService,
    private readonly hasher: PasswordHasher,
    private readonly signIn: SignInService,
    private readonly gate: CredentialGate,
    private readonly mfaLogin: MfaLoginService,
  ) {}

  /** Tokens, or — for an account with TOTP, and only after a correct password — an mfaToken for the second step. */
  login(email: string, password: string, meta: RequestMeta): Promise<SignedIn | MfaChallenge> {
    return this.signIn.attempt(() => this.attempt(email, password, meta));
  }

  private async attempt(
    email: string,
    password: string,
    meta: RequestMeta,
  ): Promise<SignedIn | MfaChallenge> {
    const user = await this.users.findByEmailWithHash(email);
    const check = await this.gate.enter(
      { email, userId: user?.id ?? null, method: 'password', meta },
      // No password is checked while locked, but the same bcrypt time is spent.
      () => this.hasher.verifyNothing(password),
    );
    const correct = await check.run(() =>
      user ? this.hasher.verify(password, user.passwordHash) : this.hasher.verifyNothing(password),
    );
    if (!user || !correct) {
      return check.refuse(user ? 'wrong_password' : 'unknown_email', invalidCredentials());
    }
    if (hasTotp(user)) {
      // Up to here the path is the same for every account, so a wrong password costs the same time
      // with or without TOTP. A correct one neither counts nor starts the failure count over here:
      // the second factor does, once proved, or whoever has the password could guess codes without limit.
      await check.release();
      return this.mfaLogin.challenge(user, meta);
    }
    // The password was right, whether or not the account may sign in: nothing counts against it.
    await check.proved();
    return this.signIn.complete(user, { method: 'password', meta, password });
  }
}
