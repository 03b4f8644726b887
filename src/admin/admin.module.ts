import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { AuthModule } from '../auth/auth.module.js';
import { UsersModule } from '../users/users.module.js';
import { AdminAuditController } from './admin-audit.controller.js';
import { AdminUsersController } from './admin-users.controller.js';
import { AdminUsersService } from './admin-users.service.js';

/** Operator endpoints under /api/v1/admin, every one behind @Roles('admin'). */
@Module({
  imports: [AuditModule, AuthModule, UsersModule],
  controllers: [AdminUsersController, AdminAuditController],
  providers: [AdminUsersService],
})
export class AdminModule {}
