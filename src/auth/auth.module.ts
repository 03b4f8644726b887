import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module.js';
import { MailModule } from '../mail/mail.module.js';
import { TokensModule } from '../tokens/tokens.module.js';
import { UsersModule } from '../users/users.module.js';
import { AccessTokensService } from './access-tokens.service.js';
import { AccountController } from './account.controller.js';
import { AccountService } from './account.service.js';
import { AuthController } from './auth.controller.js';
import { BcryptPasswordHasher } from './bcrypt-password-hasher.service.js';
import { CredentialGate } from './credential-gate.service.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { JwtStrategy } from './jwt.strategy.js';
import { LoginService } from './login.service.js';
import { MfaLoginService } from './mfa/mfa-login.service.js';
import { MfaController } from './mfa/mfa.controller.js';
import { MfaService } from './mfa/mfa.service.js';
import { RecoveryCodesRepository } from './mfa/recovery-codes.repository.js';
import { NistPasswordPolicy } from './nist-password.policy.js';
import { PasswordChangeService } from './password-change.service.js';
import { PasswordHasher } from './password-hasher.service.js';
import { PasswordResetService } from './password-reset.service.js';
import { PasswordPolicy } from './password.policy.js';
import { RegistrationService } from './registration.service.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsRepository } from './sessions.repository.js';
import { SessionsRetention } from './sessions-retention.service.js';
import { SessionsService } from './sessions.service.js';
import { SignInService } from './sign-in.service.js';
import { AuthThrottlerModule } from './throttlers.js';

@Module({
  imports: [
    PassportModule,
    JwtModule.register({}),
    UsersModule,
    TokensModule,
    MailModule,
    AuditModule,
    AuthThrottlerModule,
  ],
  controllers: [AuthController, SessionsController, AccountController, MfaController],
  providers: [
    SessionsRepository,
    SessionsService,
    SessionsRetention,
    AccessTokensService,
    // The swappable parts: a team replaces one by providing its own class under the same token.
    { provide: PasswordHasher, useClass: BcryptPasswordHasher },
    { provide: PasswordPolicy, useClass: NistPasswordPolicy },
    SignInService,
    CredentialGate,
    LoginService,
    RecoveryCodesRepository,
    MfaService,
    MfaLoginService,
    RegistrationService,
    PasswordResetService,
    PasswordChangeService,
    AccountService,
    JwtStrategy,
    { provide: APP_GUARD, useClass: JwtAuthGuard },
  ],
  exports: [SessionsService, SignInService, AccessTokensService, RegistrationService, MfaService],
})
export class AuthModule {}
