import { Global, Module } from '@nestjs/common';
import { Clock } from './clock.js';
import { DomainEvents } from './events/domain-events.js';

@Global()
@Module({ providers: [Clock, DomainEvents], exports: [Clock, DomainEvents] })
export class CommonModule {}
