import type { OwnedResourceEvents } from '../owned/owned-resources.js';

declare module '../events/domain-events.js' {
  // `todo.created`, `todo.updated` and `todo.deleted`, published by TodosService after commit.
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- declaration merging adds the events
  interface DomainEventMap extends OwnedResourceEvents<'todo'> {}
}
