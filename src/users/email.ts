/** The one normal form of an email address: trimmed, NFC, lower-cased. Stored and compared this way. */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}
