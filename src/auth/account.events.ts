/** The account's life, as domain events (published after commit; ids only, never a secret). */
export interface AccountEvent {
  userId: number;
}

declare module '../events/domain-events.js' {
  interface DomainEventMap {
    /** A new, unverified account (not published for a known address that registers again). */
    'user.registered': AccountEvent;
    /** The address was proved, by a verification link or a password reset. */
    'user.verified': AccountEvent;
    /** Changed while signed in. */
    'password.changed': AccountEvent;
    /** Set through a reset link. */
    'password.reset': AccountEvent;
    /** The account is gone; its audit trail stays. */
    'user.deleted': AccountEvent;
  }
}
