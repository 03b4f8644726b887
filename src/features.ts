import { MIGRATIONS } from '../migrations/index.js';
import { AdminModule } from './admin/admin.module.js';
import { AuditEvent } from './audit/audit-event.entity.js';
import { AuditModule } from './audit/audit.module.js';
import { AuthModule } from './auth/auth.module.js';
import { RefreshTokenHistory } from './auth/refresh-token-history.entity.js';
import { Session } from './auth/session.entity.js';
import { RecoveryCode } from './auth/mfa/recovery-code.entity.js';
import { type Feature, type Schema, schemaOf } from './database/schema.js';
import { HealthModule } from './health/health.module.js';
import { MailBudgetWindow } from './mail/mail-budget.entity.js';
import { MailModule } from './mail/mail.module.js';
import { OutboxMessage } from './mail/outbox-message.entity.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { PagesModule } from './pages/pages.module.js';
import { Todo } from './todos/todo.entity.js';
import { TodosModule } from './todos/todos.module.js';
import { EmailVerificationToken, MfaLoginToken, PasswordResetToken } from './tokens/one-time-token.entity.js';
import { TokensModule } from './tokens/tokens.module.js';
import { LoginFailure } from './users/login-failure.entity.js';
import { User } from './users/user.entity.js';
import { UsersModule } from './users/users.module.js';

/**
 * Every feature of the app: the one place a module, its tables and its migrations are registered.
 * The app, the CLI (migrations, schema check) and the tests build from this list. The core tables'
 * history is migrations/index.ts, listed once here under the module that owns the first of them.
 */
export const FEATURES: readonly Feature[] = [
  { module: UsersModule, entities: [User, LoginFailure], migrations: MIGRATIONS },
  { module: TokensModule, entities: [EmailVerificationToken, PasswordResetToken, MfaLoginToken] },
  { module: AuthModule, entities: [Session, RefreshTokenHistory, RecoveryCode] },
  { module: MailModule, entities: [OutboxMessage, MailBudgetWindow] },
  { module: AuditModule, entities: [AuditEvent] },
  { module: TodosModule, entities: [Todo] },
  { module: AdminModule },
  { module: HealthModule },
  { module: PagesModule },
  { module: MetricsModule },
];

/** The schema of the app's features plus any extra ones (a team's, or a test fixture's). */
export function appSchema(extra: readonly Feature[] = []): Schema {
  return schemaOf([...FEATURES, ...extra]);
}
