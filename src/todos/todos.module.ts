import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { TodosController } from './todos.controller.js';
import { TodosRepository } from './todos.repository.js';
import { TodosService } from './todos.service.js';

@Module({
  imports: [AuditModule],
  controllers: [TodosController],
  providers: [TodosRepository, TodosService],
})
export class TodosModule {}
