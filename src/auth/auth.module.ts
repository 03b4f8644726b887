import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccessTokensService } from './access-tokens.service.js';
import { JwtAuthGuard } from './jwt-auth.guard.js';
import { JwtStrategy } from './jwt.strategy.js';
import { Session } from './session.entity.js';
import { SessionsRepository } from './sessions.repository.js';

@Module({
  imports: [PassportModule, JwtModule.register({}), TypeOrmModule.forFeature([Session])],
  providers: [
    SessionsRepository,
    AccessTokensService,
    JwtStrategy,
    { provide: APP_GUARD, useClass: JwtAuthGuard },
  ],
  exports: [SessionsRepository, AccessTokensService],
})
export class AuthModule {}
