import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, Matches, MaxLength, ValidateBy, ValidateIf } from 'class-validator';

const TOTP_CODE = /^\d{6}$/;
/** Recovery codes as shown (`abcd-efgh-2345`), also typed without dashes or in capitals. */
const RECOVERY_CODE = /^[A-Za-z2-7]{4}-?[A-Za-z2-7]{4}-?[A-Za-z2-7]{4}$/;
const TOTP_CODE_MESSAGE = 'code must be the 6 digits the authenticator app shows';
/** A 6-digit code or a recovery code, where either may stand (DESIGN §4: disable's `code`). */
const EITHER_CODE = /^(\d{6}|[A-Za-z2-7]{4}-?[A-Za-z2-7]{4}-?[A-Za-z2-7]{4})$/;
const EITHER_PATTERN = EITHER_CODE.source;
const RECOVERY_CODE_MESSAGE = 'recoveryCode must be one of your recovery codes, e.g. abcd-efgh-2345';

/** Refuses the property when `other` is sent too: the two are alternatives. */
const NotWith = (other: string) =>
  ValidateBy({
    name: 'notWith',
    validator: {
      validate: (_value: unknown, args) => (args?.object as Record<string, unknown>)[other] === undefined,
      defaultMessage: (args) => `send either ${other} or ${args?.property ?? 'this'}, not both`,
    },
  });

export class TotpSetupResponseDto {
  /** The new secret, base32 (RFC 4648), for typing into an authenticator app by hand */
  @ApiProperty({ maxLength: 64, pattern: '^[A-Z2-7]+=*$', example: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' })
  secret!: string;

  /** The same secret as an otpauth:// URI (show it as a QR code) */
  @ApiProperty({
    maxLength: 1024,
    pattern: '^otpauth://totp/',
    example: 'otpauth://totp/Gatehouse:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Gatehouse',
  })
  otpauthUrl!: string;
}

export class ConfirmTotpDto {
  /** The current code the authenticator shows for the new secret */
  @ApiProperty({ pattern: '^\\d{6}$', minLength: 6, maxLength: 6, example: '123456' })
  @IsString()
  @Matches(TOTP_CODE, { message: TOTP_CODE_MESSAGE })
  code!: string;

  /**
   * Only when two-step sign-in is already on (replacing the authenticator): a code of the active
   * secret, or a recovery code
   */
  @ApiPropertyOptional({ minLength: 6, maxLength: 14, pattern: EITHER_PATTERN, example: '654321' })
  @ValidateIf((_o, value) => value !== undefined)
  @IsString()
  @Length(6, 14)
  @Matches(EITHER_CODE, { message: 'currentCode must be 6 digits or a recovery code' })
  currentCode?: string;
}

export class RecoveryCodesDto {
  /** 10 single-use recovery codes. Shown this once: store them somewhere safe */
  @ApiProperty({
    type: [String],
    minItems: 10,
    maxItems: 10,
    items: { type: 'string', pattern: '^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$', maxLength: 14 },
    example: [
      'abcd-efgh-2345',
      'ijkl-mnop-6723',
      'qrst-uvwx-yz23',
      'k7mp-2qxa-b4td',
      'wq3z-a7cn-64fe',
      'pl2m-xn3v-c5hr',
      'zz7a-4kd2-mup6',
      'fo5b-ra3e-y2nq',
      'tg6h-jw4s-e7ic',
      'vd3l-q6ko-x2bu',
    ],
  })
  recoveryCodes!: string[];
}

export class DisableTotpDto {
  /** Your current password */
  @IsString()
  @MaxLength(1024) // as the other password inputs (auth.dto.ts)
  password!: string;

  /** A current authenticator code, or one of your recovery codes */
  @ApiProperty({ minLength: 6, maxLength: 14, pattern: EITHER_PATTERN, example: '123456' })
  @IsString()
  @Length(6, 14)
  @Matches(EITHER_CODE, { message: 'code must be 6 digits or a recovery code' })
  code!: string;
}

export class MfaLoginDto {
  /** The mfaToken login answered with */
  @ApiProperty({ maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' })
  @IsString()
  @Length(1, 256)
  mfaToken!: string;

  /** The current authenticator code (send this or recoveryCode) */
  @ApiPropertyOptional({ pattern: '^\\d{6}$', minLength: 6, maxLength: 6, example: '123456' })
  @ValidateIf((o: MfaLoginDto) => o.code !== undefined || o.recoveryCode === undefined)
  @IsString()
  @Matches(TOTP_CODE, { message: TOTP_CODE_MESSAGE })
  code?: string;

  /** One of your recovery codes, instead of a code (each works once) */
  @ApiPropertyOptional({
    minLength: 12,
    maxLength: 14,
    pattern: RECOVERY_CODE.source,
    example: 'abcd-efgh-2345',
  })
  @ValidateIf((o: MfaLoginDto) => o.recoveryCode !== undefined)
  @IsString()
  @Matches(RECOVERY_CODE, { message: RECOVERY_CODE_MESSAGE })
  @NotWith('code')
  recoveryCode?: string;
}

/** What login answers for an account with two-step sign-in: no tokens yet, finish with POST /auth/login/mfa. */
export class MfaChallengeDto {
  @ApiProperty({ enum: [true] })
  mfaRequired!: true;

  /** Single use; send it with a code to POST /auth/login/mfa */
  @ApiProperty({ maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' })
  mfaToken!: string;

  /** Seconds the mfaToken stays usable */
  @ApiProperty({ type: 'integer', format: 'int32', minimum: 1, maximum: 3600, example: 300 })
  expiresIn!: number;
}
