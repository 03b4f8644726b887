/**
 * Longer, in UTF-16 units, than any form of an address the users table can hold: 254 code points,
 * each up to two units, sent decomposed (NFD) as a base and a mark or two.
 */
export const EMAIL_INPUT_MAX = 1024;

/**
 * The one normal form of an email address: trimmed, NFC, lower-cased. Stored and compared this way.
 * A string longer than EMAIL_INPUT_MAX is no address and comes back as it is, for validation to refuse
 * by its length: NFC's cost grows with the square of a run of combining marks, and the throttler
 * guard normalises a body's `email` before anything has checked it (100 kB of marks held the event
 * loop for 5 s on register, and for 3 s on refresh, whose body has no email field at all).
 */
export function normalizeEmail(email: string): string {
  return email.length > EMAIL_INPUT_MAX ? email : email.trim().normalize('NFC').toLowerCase();
}
