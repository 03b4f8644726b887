// The newest V8 CPU profile (from --cpu-prof) in a directory, for profile-top.mjs and profile-budget.mjs.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The newest `*.cpuprofile` in `dir`, parsed, with its path. */
export function newestProfile(dir) {
  const file = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(dir, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!file) {
    throw new Error(`no .cpuprofile in ${dir}`);
  }
  return { file, profile: JSON.parse(readFileSync(file, 'utf8')) };
}
