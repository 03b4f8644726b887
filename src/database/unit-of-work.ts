import { AsyncLocalStorage } from 'node:async_hooks';
import { Logger } from '@nestjs/common';
import { TransactionHost } from '@nestjs-cls/transactional';
import { copyMethodMetadata } from 'nestjs-cls';
import { TransactionalAdapterTypeOrm } from '@nestjs-cls/transactional-adapter-typeorm';

/**
 * The unit of work follows the call: a service marks its boundary once with `@Transactional()`, and
 * every repository reads `UnitOfWork.tx`: the open transaction's EntityManager, or the plain one
 * outside a transaction. Nothing takes an EntityManager argument, so a forgotten argument cannot push
 * a write out of its transaction. Injected by this class (an alias of nestjs-cls's TransactionHost,
 * provided by DatabaseModule).
 */
export abstract class UnitOfWork extends TransactionHost<TransactionalAdapterTypeOrm> {}

/**
 * Runs the method in a unit of work: a new transaction, or the caller's if one is open (nested calls
 * join it). The class must inject `UnitOfWork` as `uow`.
 *
 * nestjs-cls's own `@Transactional()` finds its TransactionHost through a process-wide static, which
 * belongs to whichever app was built last; two app instances in one process (the scale-out tests)
 * would then open each other's transactions. This one uses the instance's own.
 */
export function Transactional(): MethodDecorator {
  return (target, key, descriptor: PropertyDescriptor) => {
    const original = descriptor.value as (...args: unknown[]) => Promise<unknown>;
    const name = `${target.constructor.name}.${String(key)}`;
    const wrapper = function (this: { uow?: Pick<UnitOfWork, 'withTransaction'> }, ...args: unknown[]) {
      if (typeof this.uow?.withTransaction !== 'function') {
        throw new Error(`@Transactional() on ${name}: inject UnitOfWork as \`uow\``);
      }
      return this.uow.withTransaction(() => original.apply(this, args));
    };
    // Decorators below this one (@OnEvent, @Post, @Cron) left their metadata on the original function;
    // without a copy the wrapper would silently drop a listener or a route.
    copyMethodMetadata(original, wrapper);
    // Keeps the method's name for what reads it (stack traces, the throttler's per-handler keys).
    Object.defineProperty(wrapper, 'name', { value: original.name });
    descriptor.value = wrapper;
  };
}

const pending = new AsyncLocalStorage<Array<() => void>>();
const logger = new Logger('UnitOfWork');

/**
 * Runs `callback` once the outermost open transaction has committed, or at once outside one. A
 * rolled-back transaction drops its callbacks. A callback that throws is logged and never reaches the
 * caller: what happens after commit cannot undo the commit.
 */
export function afterCommit(callback: () => void): void {
  const queue = pending.getStore();
  if (queue) {
    queue.push(callback);
  } else {
    runSafely(callback);
  }
}

function runSafely(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    logger.error({ err: error }, 'An after-commit callback failed');
  }
}

/** TypeORM's adapter, with an after-commit queue per top-level transaction. */
export class UnitOfWorkAdapter extends TransactionalAdapterTypeOrm {
  constructor(options: ConstructorParameters<typeof TransactionalAdapterTypeOrm>[0]) {
    super(options);
    const factory = this.optionsFactory;
    this.optionsFactory = (dataSource) => {
      const options = factory(dataSource);
      return {
        ...options,
        wrapWithTransaction: async (txOptions, fn, setClient) => {
          const queue: Array<() => void> = [];
          const result: unknown = await pending.run(queue, () =>
            options.wrapWithTransaction(txOptions, fn, setClient),
          );
          // Committed: what runs now must not see the finished transaction as the open one.
          setClient(undefined);
          queue.forEach(runSafely);
          return result;
        },
      };
    };
  }
}
