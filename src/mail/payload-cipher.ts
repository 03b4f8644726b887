import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** Thrown by open() for a payload sealed with a key this instance does not hold (a rotation in progress). */
export class UnknownPayloadKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`sealed with key ${keyId}, which this instance does not hold (MAIL_PAYLOAD_KEY)`);
    this.name = 'UnknownPayloadKeyError';
  }
}

/** A short, public name for a key: 48 bits of its SHA-256, which reveal nothing usable about it. */
export function payloadKeyId(key: Buffer): string {
  return createHash('sha256')
    .update('gatehouse mail payload key\n')
    .update(key)
    .digest()
    .subarray(0, 6)
    .toString('base64url');
}

/**
 * AES-256-GCM for outbox payloads (DESIGN §6: no token link sits in the outbox in plaintext).
 * The sealed form is `v2.<key id>.<iv>.<tag>.<ciphertext>` in base64url. The template and recipient
 * are bound as associated data, so a ciphertext copied onto another row (another recipient) does not open.
 *
 * Several keys may be given, newest first (DESIGN §6): seal() uses the first, open() any of them. The
 * key id tells "sealed with a key I do not hold" (another instance is ahead in a rotation: leave the
 * row for it) apart from "does not open" (tampered or moved: no retry helps). `v1` payloads, written
 * before key ids, are tried against every key.
 */
export class PayloadCipher {
  private readonly keys: readonly { id: string; key: Buffer }[];

  constructor(keys: Buffer | readonly Buffer[]) {
    const list = Buffer.isBuffer(keys) ? [keys] : keys;
    if (list.length === 0 || list.some((key) => key.length !== 32)) {
      throw new Error('The outbox payload keys must be 32 bytes each, and at least one is needed');
    }
    this.keys = list.map((key) => ({ id: payloadKeyId(key), key }));
  }

  seal(plaintext: string, associatedData: string): string {
    const { id, key } = this.keys[0];
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v2', id, ...[iv, cipher.getAuthTag(), ciphertext].map((p) => p.toString('base64url'))].join('.');
  }

  /**
   * Throws UnknownPayloadKeyError for a key this instance does not hold, and a plain Error when the
   * payload was sealed for another row, tampered with, or is not a sealed payload at all.
   */
  open(sealed: string, associatedData: string): string {
    const parts = sealed.split('.');
    if (parts[0] === 'v2' && parts.length === 5) {
      const [, id, iv, tag, ciphertext] = parts;
      const match = this.keys.find((k) => k.id === id);
      if (!match) {
        throw new UnknownPayloadKeyError(id);
      }
      return decrypt(match.key, iv, tag, ciphertext, associatedData);
    }
    if (parts[0] === 'v1' && parts.length === 4) {
      const [, iv, tag, ciphertext] = parts;
      for (const { key } of this.keys.slice(0, -1)) {
        try {
          return decrypt(key, iv, tag, ciphertext, associatedData);
        } catch {
          // the next key, older, may be the one
        }
      }
      return decrypt(this.keys[this.keys.length - 1].key, iv, tag, ciphertext, associatedData);
    }
    throw new Error('unknown payload format');
  }
}

function decrypt(key: Buffer, iv: string, tag: string, ciphertext: string, associatedData: string): string {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
  decipher.setAAD(Buffer.from(associatedData, 'utf8'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString(
    'utf8',
  );
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
