/**
 * How deep a JSON body may nest arrays and objects. Every body this API accepts is a flat object
 * (depth 1); the margin is for clients that send a little more. Without a limit, 45,000 nested `[`
 * fit under BODY_LIMIT and validation recursed until the stack overflowed (a 500, and ~60 ms of
 * main-thread CPU per request).
 */
export const JSON_MAX_DEPTH = 8;

/**
 * How many object members and array elements a JSON body may hold, all its objects and arrays
 * together. The widest body this API accepts has a handful of fields. Without a limit, 9,000 unknown
 * keys fit in an 89 kB body and cost 50–120 ms of main-thread CPU each time (one validation error
 * per key, before the answer lists the first 100), against ~4 ms for a body that fits.
 */
export const JSON_MAX_ITEMS = 256;

/** The problem code for a body over one of the limits above. */
export type JsonShapeFault = 'BODY_TOO_DEEP' | 'BODY_TOO_WIDE';

/**
 * Whether a JSON text nests deeper than `limits.depth` or holds more than `limits.items` members
 * and elements, found by one scan of its characters (strings skipped), before anything parses it:
 * cheap and without recursion, so a hostile body costs no more than reading it once. Malformed JSON
 * is left to the parser.
 */
export function jsonShapeFault(
  text: string,
  limits: { depth: number; items: number } = { depth: JSON_MAX_DEPTH, items: JSON_MAX_ITEMS },
): JsonShapeFault | undefined {
  let depth = 0;
  let items = 0;
  let inString = false;
  // Just after `[` or `{`: the next character that is not white space starts the first item, unless
  // it closes an empty one. Every later item follows a comma.
  let opened = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        i += 1; // the escaped character, whatever it is
      } else if (c === 0x22) {
        inString = false;
      }
      continue;
    }
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      continue;
    }
    if (opened && c !== 0x5d && c !== 0x7d) {
      items += 1;
    }
    opened = false;
    if (c === 0x22) {
      inString = true;
    } else if (c === 0x2c) {
      items += 1;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limits.depth) {
        return 'BODY_TOO_DEEP';
      }
      opened = true;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
    if (items > limits.items) {
      return 'BODY_TOO_WIDE';
    }
  }
  return undefined;
}
