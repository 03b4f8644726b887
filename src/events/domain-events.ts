import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { afterCommit } from '../database/unit-of-work.js';

/**
 * Every domain event by name, with its payload type. Each module adds its own events by declaration
 * merging (see `src/todos/todos.events.ts`), so the list is one typed table: publishing a misspelt
 * name or a wrong payload does not compile, and a listener writes `@OnEvent('x' satisfies
 * DomainEventName)` to get the same check. Payloads carry ids and facts, never a secret.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface DomainEventMap {}

export type DomainEventName = keyof DomainEventMap;

/**
 * Publishes domain events for other modules (and the teams that extend Gatehouse) to react to with
 * `@OnEvent(name)`. An event published inside a unit of work is emitted only after it commits and is
 * dropped if it rolls back; a listener that throws is logged and never fails the request.
 */
@Injectable()
export class DomainEvents {
  constructor(private readonly emitter: EventEmitter2) {}

  publish<K extends DomainEventName>(name: K, payload: DomainEventMap[K]): void {
    afterCommit(() => {
      this.emitter.emit(name, payload);
    });
  }
}
