// nestjs-pino keeps one root logger per process, made by the first app that logs: without a reset,
// every later TestApp in a worker would log out-of-request lines (workers, timers) into the first
// app's `logs`. The module is not in the package's exports map, so it is loaded beside the resolved
// entry point (the same module instance the app uses).
interface RootLogger {
  ensureRootLogger(this: void, params?: object): unknown;
  resetRootLogger(this: void): void;
}

const rootLogger = (await import(
  new URL('./rootLogger.js', import.meta.resolve('nestjs-pino')).href
)) as RootLogger;

export const { ensureRootLogger, resetRootLogger } = rootLogger;
