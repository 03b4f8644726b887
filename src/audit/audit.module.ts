import { Module } from '@nestjs/common';
import { AuditQueryService } from './audit-query.service.js';
import { AuditRetentionService } from './audit-retention.service.js';
import { AuditController } from './audit.controller.js';
import { AuditRepository } from './audit.repository.js';
import { AuditService } from './audit.service.js';

@Module({
  controllers: [AuditController],
  providers: [AuditRepository, AuditService, AuditQueryService, AuditRetentionService],
  exports: [AuditService, AuditQueryService, AuditRetentionService],
})
export class AuditModule {}
