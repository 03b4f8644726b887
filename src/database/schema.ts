import type { Type } from '@nestjs/common';

/** What the DataSource is built from: the entity classes and the migrations that create their tables. */
export interface Schema {
  entities: readonly Type[];
  migrations: readonly Type[];
}

/**
 * A feature registers in one place: its Nest module, the tables it owns and the migrations that make
 * them. The app (src/features.ts), the CLI and the tests build everything from a list of these.
 */
export interface Feature {
  module: Type;
  entities?: readonly Type[];
  /** Any order: TypeORM runs migrations by the timestamp in their names. */
  migrations?: readonly Type[];
}

export function schemaOf(features: readonly Feature[]): Schema {
  return {
    entities: features.flatMap((feature) => feature.entities ?? []),
    migrations: features.flatMap((feature) => feature.migrations ?? []),
  };
}
