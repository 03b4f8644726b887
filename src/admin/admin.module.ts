import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { MailModule } from '../mail/mail.module.js';
import { TokensModule } from '../tokens/tokens.module.js';
import { AdminAuditController } from './admin-audit.controller.js';
import { AdminUsersController } from './admin-users.controller.js';
import { AdminUsersRepository } from './admin-users.repository.js';
import { AdminUsersService } from './admin-users.service.js';

/** Operator endpoints under /api/v1/admin, every one behind @Roles('admin'). */
@Module({
  imports: [AuditModule, TokensModule, MailModule],
  controllers: [AdminUsersController, AdminAuditController],
  providers: [AdminUsersRepository, AdminUsersService],
})
export class AdminModule {}
