import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';

/**
 * The mailbox an address reaches, for budgeting: NFKC, lower case, the `+tag` dropped and the domain
 * in its IDNA ASCII form (UTS #46 maps Unicode case and compatibility variants), so `Ada+1@Bücher.test`
 * and `ada@xn--bcher-kva.test` share one budget, as do quoted forms (`"ada"@…`). Only a budget key: accounts keep the address as given.
 */
export function canonicalMailbox(email: string): string {
  const folded = email.normalize('NFKC').trim().toLowerCase();
  const at = folded.lastIndexOf('@');
  if (at < 0) {
    return folded;
  }
  const local = unquoted(folded.slice(0, at)).split('+')[0];
  const domain = folded.slice(at + 1).replace(/\.$/, '');
  return `${local}@${domainToASCII(domain) || domain}`;
}

/**
 * A quoted local part names the same mailbox as its contents (RFC 5321 §4.1.2), and a backslash only
 * quotes the character after it: `"ada"`, `"\\ada"` and `ada` are one mailbox, so one budget.
 */
function unquoted(local: string): string {
  return /^".*"$/s.test(local) ? local.slice(1, -1).replace(/\\(.)/gs, '$1') : local;
}

/** The budget row's key: the table never holds an address in the clear. */
export function budgetKey(email: string): string {
  return createHash('sha256').update(canonicalMailbox(email), 'utf8').digest('hex');
}
