import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { LoginFailuresRepository } from './login-failures.repository.js';
import { LoginLockout } from './login-lockout.service.js';
import { UsersController } from './users.controller.js';
import { UnverifiedAccountsRetention } from './unverified-retention.service.js';
import { UsersRepository } from './users.repository.js';
import { UsersService } from './users.service.js';

@Module({
  imports: [AuditModule],
  controllers: [UsersController],
  providers: [
    UsersRepository,
    UsersService,
    UnverifiedAccountsRetention,
    LoginFailuresRepository,
    LoginLockout,
  ],
  exports: [UsersService, LoginLockout],
})
export class UsersModule {}
