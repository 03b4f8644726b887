import { Global, Module } from '@nestjs/common';
import { Clock } from './clock.js';
import { Shutdown } from './shutdown.js';

@Global()
@Module({ providers: [Clock, Shutdown], exports: [Clock, Shutdown] })
export class CommonModule {}
