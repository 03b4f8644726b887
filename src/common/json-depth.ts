/**
 * How deep a JSON body may nest arrays and objects. Every body this API accepts is a flat object
 * (depth 1); the margin is for clients that send a little more. Without a limit, 45,000 nested `[`
 * fit under BODY_LIMIT and validation recursed until the stack overflowed (a 500, and ~60 ms of
 * main-thread CPU per request).
 */
export const JSON_MAX_DEPTH = 8;

/**
 * Whether a JSON text nests arrays/objects deeper than `limit`, found by one scan of its characters
 * (strings skipped), before anything parses it: cheap and without recursion, so a hostile body costs
 * no more than reading it once.
 */
export function exceedsJsonDepth(text: string, limit = JSON_MAX_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        i += 1; // the escaped character, whatever it is
      } else if (c === 0x22) {
        inString = false;
      }
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) {
        return true;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return false;
}
