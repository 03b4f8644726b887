import { isIPv4, isIPv6 } from 'node:net';

/**
 * Who a client is, for per-client limits and lockout counters: an IPv4 address as is, an IPv6
 * address by its /64 prefix (one subscriber usually owns a whole /64, so counting single IPv6
 * addresses would give each attacker 2^64 fresh budgets). IPv4-mapped IPv6 counts as the IPv4.
 */
export function clientKey(ip: string | null | undefined): string {
  if (!ip) {
    return 'unknown';
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) {
    return mapped[1];
  }
  if (isIPv4(ip) || !isIPv6(ip)) {
    return ip;
  }
  return `${expandIPv6(ip.split('%')[0]).slice(0, 4).join(':')}::/64`;
}

/** The eight hextets of an IPv6 address, without leading zeros; an embedded IPv4 tail is converted. */
function expandIPv6(ip: string): string[] {
  const withoutV4 = ip.replace(
    /(\d+)\.(\d+)\.(\d+)\.(\d+)$/,
    (_all, a: string, b: string, c: string, d: string) => {
      const hex = (x: string, y: string) => ((Number(x) << 8) | Number(y)).toString(16);
      return `${hex(a, b)}:${hex(c, d)}`;
    },
  );
  const [head, tail] = withoutV4.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right].map((part) => parseInt(part, 16).toString(16));
}
