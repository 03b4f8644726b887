import ms, { type StringValue } from 'ms';

/** Parses "15m", "24h", "30d", "900s" or a bare number of seconds into milliseconds; null when invalid. */
export function parseDuration(value: string): number | null {
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) {
    return Number(trimmed) * 1000;
  }
  if (!/^\d+(ms|s|m|h|d)$/.test(trimmed)) {
    return null;
  }
  const parsed = ms(trimmed as StringValue);
  return Number.isFinite(parsed) && parsed > 0 ? parsed : null;
}
