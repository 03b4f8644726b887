import { createRequire } from 'node:module';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { Config } from '../config/config.js';
import {
  normalizePassword,
  PASSWORD_MAX_LENGTH,
  type PasswordContext,
  PasswordPolicy,
} from './password.policy.js';

type ZxcvbnCommon = typeof import('@zxcvbn-ts/language-common');
let commonPasswords: readonly string[] | undefined;

/**
 * ~49,000 of the most common passwords, from zxcvbn-ts's maintained list, lower-cased and sorted for a
 * binary search: a Set of them held 1.3 MB of hash table for the life of the process, this array 0.2 MB
 * (bench/results/2026-12-06-node24-memory.md). Loaded at the first password set, not at boot: the list
 * and its sort cost 35-45 ms of a boot that should take 1 s (DESIGN §7), and 3 MB of heap. Its
 * CommonJS build loads synchronously, so the check stays synchronous.
 */
function commonPasswordList(): readonly string[] {
  if (commonPasswords === undefined) {
    const { dictionary } = createRequire(import.meta.url)('@zxcvbn-ts/language-common') as ZxcvbnCommon;
    commonPasswords = dictionary['passwords-common'].map((p) => p.toLowerCase()).sort();
  }
  return commonPasswords;
}

/** Whether `lower` (already lower-cased) is on the common-password list. */
export function isCommonPassword(lower: string): boolean {
  const list = commonPasswordList();
  let low = 0;
  let high = list.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const entry = list[middle];
    if (entry === lower) {
      return true;
    }
    // The same order as sort(): UTF-16 code units.
    if (entry < lower) {
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return false;
}

/** The service's own name: the first word an attacker tries against it (NIST SP 800-63B §5.1.1.2). */
const SERVICE_WORDS = ['gatehouse'];

/**
 * Runs of keys or characters people type as a "password": the alphabet, digits and keyboard rows
 * (QWERTY, QWERTZ, AZERTY, and QWERTY's columns), read on from one row into the next.
 */
const SEQUENCES = [
  'abcdefghijklmnopqrstuvwxyz',
  '01234567890',
  'qwertyuiopasdfghjklzxcvbnm',
  'qwertzuiopasdfghjklyxcvbnm',
  'azertyuiopqsdfghjklmwxcvbn',
  'qazwsxedcrfvtgbyhnujmikolp',
  '1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p',
].flatMap((s) => [s, [...s].reverse().join('')]);

/** C0/C1 controls (NUL, ESC, DEL …): never typed on purpose, and they break the tools around a password. */
const CONTROL = /\p{Cc}/u;
/** A UTF-16 half with no partner: it cannot be encoded, and every such password would hash as U+FFFD. */
const LONE_SURROGATE = /\p{Cs}/u;
/** What prints as nothing: spaces, zero-width and other format or default-ignorable characters. */
const INVISIBLE = /[\p{White_Space}\p{Cf}\p{Default_Ignorable_Code_Point}]/gu;
/** What may pad a context word ("gatehouse2026!") without making it a different password. */
const PADDING = /^[\p{N}\p{P}\p{S}\p{White_Space}]*$/u;

/**
 * The default policy (NIST SP 800-63B §5.1.1.2): length in code points, no composition rules; refused
 * when it is a common password, a keyboard or alphabet sequence, repetitive, invisible, or built from
 * the context (the service's name, the account's email parts or username).
 */
@Injectable()
export class NistPasswordPolicy extends PasswordPolicy {
  private readonly minLength: number;
  private readonly serviceWords: string[];

  constructor(config: ConfigService<Config, true>) {
    super();
    this.minLength = config.getOrThrow('auth', { infer: true }).passwordMinLength;
    const host = new URL(config.getOrThrow('app', { infer: true }).publicUrl).hostname;
    this.serviceWords = [...SERVICE_WORDS, ...host.split('.').filter((part) => part.length >= 4)];
  }

  problem(password: string, context: PasswordContext): string | null {
    if (LONE_SURROGATE.test(password)) {
      return 'must not contain unpaired surrogate code units';
    }
    if (CONTROL.test(password)) {
      return 'must not contain control characters';
    }
    const normalized = normalizePassword(password);
    const length = [...normalized].length;
    if (length < this.minLength) {
      return `must be at least ${this.minLength} characters`;
    }
    if (length > PASSWORD_MAX_LENGTH) {
      return `must be at most ${PASSWORD_MAX_LENGTH} characters`;
    }
    const lower = normalized.toLowerCase();
    if (lower.replace(INVISIBLE, '').length === 0) {
      return 'must contain visible characters';
    }
    if (isCommonPassword(lower)) {
      return 'is too common; choose a less guessable password';
    }
    if (new Set(lower).size === 1 || SEQUENCES.some((sequence) => sequence.includes(lower))) {
      return 'is a sequence or repetition; choose a less guessable password';
    }
    const email = context.email?.toLowerCase();
    if (email && (lower === email || lower === email.split('@')[0])) {
      return 'must not be your email address';
    }
    if (context.username && lower === context.username.toLowerCase()) {
      return 'must not be your username';
    }
    if (
      this.contextWords(context).some((word) => lower.includes(word) && PADDING.test(lower.replace(word, '')))
    ) {
      return 'is too close to the service’s or your account’s name';
    }
    return null;
  }

  /** The service's name, the email's local part and domain labels, the username: each ≥ 4 characters. */
  private contextWords(context: PasswordContext): string[] {
    const email = context.email?.toLowerCase() ?? '';
    const at = email.lastIndexOf('@');
    const local = at < 0 ? email : email.slice(0, at);
    const domain = at < 0 ? [] : email.slice(at + 1).split('.');
    return [
      ...this.serviceWords,
      local,
      ...local.split(/[.+_-]/),
      ...domain,
      context.username?.toLowerCase() ?? '',
    ].filter((word) => word.length >= 4);
  }
}
