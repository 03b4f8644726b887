import { createRequire } from 'node:module';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<
  NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
>;
/** What @fastify/ajv-compiler and @fastify/fast-json-stringify-compiler export: a factory of factories. */
type Selector = () => (...args: unknown[]) => unknown;

/**
 * Fastify's JSON-schema compilers, loaded only when a route declares a schema. Fastify itself loads
 * them as it is created: ajv and fast-json-stringify, about 120 files and 30 ms of a boot that should
 * take 1 s (DESIGN §7), for routes Gatehouse does not have (class-validator checks bodies,
 * src/common/validation.ts, and Nest writes answers). A route that does declare one gets the very
 * compilers Fastify would have used: its own copies, resolved from Fastify's directory.
 */
export function compilersOnDemand(): CompilersFactory {
  const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  const onDemand = (name: string) => {
    let factory: ReturnType<Selector> | undefined;
    return (...args: unknown[]) => {
      factory ??= (fromFastify(name) as Selector)();
      return factory(...args);
    };
  };
  return {
    buildValidator: onDemand('@fastify/ajv-compiler'),
    buildSerializer: onDemand('@fastify/fast-json-stringify-compiler'),
  } as CompilersFactory;
}
