import { AuditEvent } from '../audit/audit-event.entity.js';
import { RefreshTokenHistory } from '../auth/refresh-token-history.entity.js';
import { Session } from '../auth/session.entity.js';
import { OutboxMessage } from '../mail/outbox-message.entity.js';
import { Todo } from '../todos/todo.entity.js';
import { EmailVerificationToken, PasswordResetToken } from '../tokens/one-time-token.entity.js';
import { User } from '../users/user.entity.js';

/** Listed explicitly rather than globbed, so the same list works from src (tests) and dist. */
export const ENTITIES = [
  User,
  EmailVerificationToken,
  PasswordResetToken,
  Session,
  RefreshTokenHistory,
  Todo,
  AuditEvent,
  OutboxMessage,
];
