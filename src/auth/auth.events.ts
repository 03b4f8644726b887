import type { SessionRevokedReason } from './session.entity.js';
import type { LoginFailureReason, SignInMethod } from './sign-in.service.js';

/** A session was opened: the sign-in pipeline's last step committed. */
export interface LoginSucceededEvent {
  userId: number;
  sessionId: number;
  method: SignInMethod;
}

/** A sign-in was refused; `userId` is null for an address with no account. */
export interface LoginFailedEvent {
  userId: number | null;
  reason: LoginFailureReason;
  method: SignInMethod;
}

/** Sessions stopped working: one (logout, revoke, refresh reuse) or several (logout-all, admin). */
export interface SessionRevokedEvent {
  userId: number;
  sessionIds: number[];
  reason: SessionRevokedReason;
}

declare module '../events/domain-events.js' {
  // Published by SignInService and SessionsService after their unit of work commits.
  interface DomainEventMap {
    'auth.login_succeeded': LoginSucceededEvent;
    'auth.login_failed': LoginFailedEvent;
    'session.revoked': SessionRevokedEvent;
  }
}
