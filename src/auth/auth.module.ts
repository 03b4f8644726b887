import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { TypeOrmModule } from '@nestjs/typeorm';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { JwtStrategy } from './jwt.strategy.js';
import { Session } from './session.entity.js';
import { SessionsRepository } from './sessions.repository.js';

@Module({
  imports: [PassportModule, TypeOrmModule.forFeature([Session])],
  providers: [SessionsRepository, JwtStrategy, { provide: APP_GUARD, useClass: JwtAuthGuard }],
  exports: [SessionsRepository],
})
export class AuthModule {}
