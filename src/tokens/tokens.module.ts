import { Module } from '@nestjs/common';
import { OneTimeTokensRepository } from './one-time-tokens.repository.js';
import { TokensService } from './tokens.service.js';

@Module({
  providers: [OneTimeTokensRepository, TokensService],
  exports: [TokensService],
})
export class TokensModule {}
