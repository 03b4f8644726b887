import { QueryFailedError } from 'typeorm';
import { connectivityCode, isDatabaseUnavailable } from './dependency.js';

const driverError = (code: string, message = code) => Object.assign(new Error(message), { code });

describe(isDatabaseUnavailable.name, () => {
  it.each(['ECONNREFUSED', 'PROTOCOL_CONNECTION_LOST', 'SQLITE_BUSY', 'ER_LOCK_WAIT_TIMEOUT'])(
    'should take %s, wrapped as TypeORM wraps it, for a database that cannot take the request now',
    (code) => {
      const wrapped = new QueryFailedError('INSERT …', [], driverError(code));
      expect(isDatabaseUnavailable(wrapped)).toBe(true);
      expect(connectivityCode(wrapped)).toBe(code);
    },
  );

  it.each(['ER_DUP_ENTRY', 'ER_LOCK_DEADLOCK', 'SQLITE_CONSTRAINT_UNIQUE', 'ER_PARSE_ERROR'])(
    'should not take %s, which a retry would not cure or which is handled where it happens',
    (code) => {
      expect(isDatabaseUnavailable(new QueryFailedError('INSERT …', [], driverError(code)))).toBe(false);
    },
  );

  it('should follow causes a few levels deep, and stop at a cycle', () => {
    expect(
      isDatabaseUnavailable(
        new Error('outer', { cause: new Error('inner', { cause: driverError('ETIMEDOUT') }) }),
      ),
    ).toBe(true);
    const cyclic: { code?: string; cause?: unknown } = {};
    cyclic.cause = cyclic;
    expect(isDatabaseUnavailable(cyclic)).toBe(false);
  });
});
