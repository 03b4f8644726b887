import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for outbox payloads (DESIGN §6: no token link sits in the outbox in plaintext).
 * The sealed form is `v1.<iv>.<tag>.<ciphertext>` in base64url. The template and recipient are bound
 * as associated data, so a ciphertext copied onto another row (another recipient) does not open.
 */
export class PayloadCipher {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) {
      throw new Error('The outbox payload key must be 32 bytes');
    }
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv, cipher.getAuthTag(), ciphertext]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  /** Throws when the payload was sealed with another key, for another row, or tampered with. */
  open(sealed: string, associatedData: string): string {
    const [version, iv, tag, ciphertext] = sealed.split('.');
    if (version !== 'v1' || iv === undefined || tag === undefined || ciphertext === undefined) {
      throw new Error('unknown payload format');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }
}

/** What payload holds once a message is sent or dead: nothing secret is kept longer than needed. */
export const ERASED_PAYLOAD = '{"v":1,"erased":true}';

/** Encrypts a message's data for the outbox row (the whole record, so no caller has to say what is secret). */
export function sealPayload(
  cipher: PayloadCipher,
  template: string,
  recipient: string,
  data: Record<string, string>,
): string {
  return JSON.stringify({
    v: 1,
    sealed: cipher.seal(JSON.stringify(data), associatedData(template, recipient)),
  });
}

export function openPayload(
  cipher: PayloadCipher,
  template: string,
  recipient: string,
  payload: string,
): Record<string, string> {
  const parsed = JSON.parse(payload) as { v?: number; sealed?: string; erased?: boolean };
  if (parsed.erased) {
    throw new Error('payload was erased');
  }
  if (parsed.v !== 1 || typeof parsed.sealed !== 'string') {
    throw new Error('unknown payload format');
  }
  return JSON.parse(cipher.open(parsed.sealed, associatedData(template, recipient))) as Record<
    string,
    string
  >;
}

function associatedData(template: string, recipient: string): string {
  return `${template}\n${recipient}`;
}
