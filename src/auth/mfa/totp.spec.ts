import { generateSync, stringToBytes } from 'otplib';
import { matchTotp, newTotpSecret, otpauthUrl, timeStepOf, TOTP, totpCode } from './totp.js';

/** RFC 6238 Appendix B: the seeds are the ASCII digits, 20/32/64 bytes for SHA-1/256/512; 8 digits. */
const SEEDS = {
  sha1: '12345678901234567890',
  sha256: '12345678901234567890123456789012',
  sha512: '1234567890123456789012345678901234567890123456789012345678901234',
} as const;

const VECTORS: [number, Record<keyof typeof SEEDS, string>][] = [
  [59, { sha1: '94287082', sha256: '46119246', sha512: '90693936' }],
  [1111111109, { sha1: '07081804', sha256: '68084774', sha512: '25091201' }],
  [1111111111, { sha1: '14050471', sha256: '67062674', sha512: '99943326' }],
  [1234567890, { sha1: '89005924', sha256: '91819424', sha512: '93441116' }],
  [2000000000, { sha1: '69279037', sha256: '90698825', sha512: '38618901' }],
  [20000000000, { sha1: '65353130', sha256: '77737706', sha512: '47863826' }],
];

/** The SHA-1 seed in base32, the form Gatehouse stores and authenticator apps read. */
const RFC_SHA1_BASE32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP (RFC 6238)', () => {
  it.each(VECTORS)(
    'should give the RFC 6238 Appendix B codes at T=%d for SHA-1, SHA-256 and SHA-512',
    (t, codes) => {
      for (const algorithm of ['sha1', 'sha256', 'sha512'] as const) {
        expect(
          generateSync({
            secret: stringToBytes(SEEDS[algorithm]),
            epoch: t,
            algorithm,
            digits: 8,
            period: 30,
          }),
        ).toBe(codes[algorithm]);
      }
    },
  );

  it.each(VECTORS)(
    'should give, with Gatehouse’s parameters, the last 6 digits of the SHA-1 vector at T=%d',
    (t, codes) => {
      expect(TOTP).toEqual({ algorithm: 'sha1', digits: 6, period: 30, window: 1 });
      expect(totpCode(RFC_SHA1_BASE32, t * 1000)).toBe(codes.sha1.slice(-6));
      expect(matchTotp(RFC_SHA1_BASE32, codes.sha1.slice(-6), t * 1000)).toBe(Math.floor(t / 30));
    },
  );

  it('should accept a code one step early or late, and no further', () => {
    const now = 1_800_000_015_000;
    const step = timeStepOf(now);
    const at = (offset: number) => totpCode(RFC_SHA1_BASE32, now + offset * 30_000);
    expect(matchTotp(RFC_SHA1_BASE32, at(0), now)).toBe(step);
    expect(matchTotp(RFC_SHA1_BASE32, at(-1), now)).toBe(step - 1);
    expect(matchTotp(RFC_SHA1_BASE32, at(1), now)).toBe(step + 1);
    expect(matchTotp(RFC_SHA1_BASE32, at(-2), now)).toBeNull();
    expect(matchTotp(RFC_SHA1_BASE32, at(2), now)).toBeNull();
  });

  it('should refuse codes of the wrong shape or for another secret', () => {
    const now = 1_800_000_015_000;
    const code = totpCode(RFC_SHA1_BASE32, now);
    for (const bad of ['', '12345', '1234567', 'abcdef', ` ${code}`, `${code}\n`, '１２３４５６']) {
      expect(matchTotp(RFC_SHA1_BASE32, bad, now)).toBeNull();
    }
    const other = newTotpSecret();
    expect(matchTotp(other, code, now) === null || totpCode(other, now) === code).toBe(true);
  });

  it('should make 160-bit base32 secrets and an otpauth URI naming issuer, account and parameters', () => {
    const secret = newTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(secret);
    const url = new URL(otpauthUrl(secret, 'Gatehouse', 'ada@example.com'));
    expect(url.protocol).toBe('otpauth:');
    expect(decodeURIComponent(url.pathname)).toContain('Gatehouse:ada@example.com');
    expect(url.searchParams.get('secret')).toBe(secret);
    expect(url.searchParams.get('issuer')).toBe('Gatehouse');
  });
});
