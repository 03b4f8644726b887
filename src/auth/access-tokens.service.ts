import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import type { Config } from '../config/config.js';
import type { AccessTokenClaims } from '../common/auth/auth-user.js';

/** Signs access JWTs: HS256, iss, aud, sub, sid and a short exp. Verification is JwtStrategy's job. */
@Injectable()
export class AccessTokensService {
  private readonly auth: Config['auth'];

  constructor(
    private readonly jwt: JwtService,
    config: ConfigService<Config, true>,
  ) {
    this.auth = config.getOrThrow('auth', { infer: true });
  }

  /** Seconds until an access token expires, as reported to clients in `expiresIn`. */
  get ttlSeconds(): number {
    return Math.floor(this.auth.accessTtlMs / 1000);
  }

  sign(userId: number, sessionId: number): Promise<string> {
    const claims: AccessTokenClaims = { sub: String(userId), sid: sessionId };
    return this.jwt.signAsync(claims, {
      secret: this.auth.jwtSecret,
      algorithm: 'HS256',
      issuer: this.auth.jwtIssuer,
      audience: this.auth.jwtAudience,
      expiresIn: this.ttlSeconds,
    });
  }
}
