import { unauthenticated } from '../common/auth/unauthenticated.js';
import { createSecretKey } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import { Clock } from '../common/clock.js';
import { logAsCaller } from '../common/logging.js';
import type { Config } from '../config/config.js';
import type { AccessTokenClaims, AuthUser } from '../common/auth/auth-user.js';
import { bearerToken } from './bearer-token.js';
import { SessionsRepository } from './sessions.repository.js';

/**
 * Verifies the access JWT (HS256 only: `none` and every other algorithm are refused, as are a wrong
 * iss/aud and an expired token), then checks that its session is still live, so logout, password
 * changes, disabling and deletion take effect on the very next request.
 */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(
    config: ConfigService<Config, true>,
    private readonly sessions: SessionsRepository,
    private readonly clock: Clock,
  ) {
    const auth = config.getOrThrow('auth', { infer: true });
    super({
      jwtFromRequest: bearerToken,
      // A KeyObject made once: given a string, jsonwebtoken tries (and fails) to parse it as a public key
      // on every request, which was the largest single cost of an authenticated request.
      secretOrKey: createSecretKey(Buffer.from(auth.jwtSecret, 'utf8')) as unknown as string,
      algorithms: ['HS256'],
      issuer: auth.jwtIssuer,
      audience: auth.jwtAudience,
      ignoreExpiration: false,
    });
  }

  async validate(claims: AccessTokenClaims): Promise<AuthUser> {
    const userId = Number(claims.sub);
    const sessionId = Number(claims.sid);
    if (!Number.isSafeInteger(userId) || !Number.isSafeInteger(sessionId)) {
      throw unauthenticated();
    }
    const caller = await this.sessions.findLiveCaller(sessionId, userId, this.clock.now());
    if (!caller) {
      throw unauthenticated();
    }
    logAsCaller(caller.id);
    return caller;
  }
}
