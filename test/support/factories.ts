import { createHash, randomBytes } from 'node:crypto';
import { AccessTokensService } from '../../src/auth/access-tokens.service.js';
import { Session } from '../../src/auth/session.entity.js';
import { Todo } from '../../src/todos/todo.entity.js';
import type { UserRole } from '../../src/common/auth/auth-user.js';
import { User } from '../../src/users/user.entity.js';
import type { TestApp } from './test-app.js';

export interface SeededUser {
  id: number;
  email: string;
  sessionId: number;
  accessToken: string;
}

let counter = 0;

export function uniqueEmail(prefix = 'user'): string {
  counter += 1;
  return `${prefix}-${Date.now().toString(36)}-${counter}-${randomBytes(3).toString('hex')}@example.test`;
}

/**
 * Seeds a user with a live session and a signed access token, straight into the database: for tests
 * about something other than sign-up and login. The password hash is a placeholder no password matches.
 */
export async function newUser(
  t: TestApp,
  options: { email?: string; verified?: boolean; role?: UserRole } = {},
): Promise<SeededUser> {
  const users = t.dataSource.getRepository(User);
  const { identifiers } = await users.insert({
    email: options.email ?? uniqueEmail(),
    passwordHash: '!seeded-without-password',
    isVerified: options.verified ?? true,
    role: options.role ?? 'user',
  });
  const id = Number(identifiers[0].id);
  const user = await users.findOneByOrFail({ id });
  const sessionId = await newSession(t, id);
  const accessToken = await t.app.get(AccessTokensService).sign(id, sessionId);
  return { id, email: user.email, sessionId, accessToken };
}

export async function newSession(t: TestApp, userId: number): Promise<number> {
  const { identifiers } = await t.dataSource.getRepository(Session).insert({
    userId,
    refreshTokenHash: createHash('sha256').update(randomBytes(32)).digest('hex'),
    expiresAt: new Date(Date.now() + 24 * 3600 * 1000),
  });
  return Number(identifiers[0].id);
}

export interface SeededTodo {
  id: number;
  title: string;
}

let todoCounter = 0;

/** Seeds a todo owned by `ownerId` straight into the database. */
export async function newTodo(
  t: TestApp,
  options: {
    ownerId: number;
    title?: string;
    description?: string | null;
    completed?: boolean;
    dueAt?: Date | null;
  },
): Promise<SeededTodo> {
  todoCounter += 1;
  const title = options.title ?? `todo ${todoCounter} ${randomBytes(3).toString('hex')}`;
  const { identifiers } = await t.dataSource.getRepository(Todo).insert({
    userId: options.ownerId,
    title,
    description: options.description ?? null,
    completed: options.completed ?? false,
    dueAt: options.dueAt ?? null,
  });
  return { id: Number(identifiers[0].id), title };
}
