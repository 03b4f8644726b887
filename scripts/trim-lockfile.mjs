// The npm registry this project is built against lacks some platform-only optional packages
// (unrs-resolver's bindings for macOS, Windows, Android…). `npm install` still lists them as optional
// dependencies without recording them, and `npm ci` then refuses the lock file as out of sync.
// Run `npm run lockfile:trim` after every `npm install` that changes package-lock.json: it drops the
// optional dependencies the lock file has no entry for, which is exactly what npm could not fetch.
import { readFileSync, writeFileSync } from 'node:fs';

const file = 'package-lock.json';
const lock = JSON.parse(readFileSync(file, 'utf8'));
const packages = lock.packages;
let dropped = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const name of Object.keys(entry.optionalDependencies ?? {})) {
    const nested = path ? `${path}/node_modules/${name}` : `node_modules/${name}`;
    if (!(nested in packages) && !(`node_modules/${name}` in packages)) {
      delete entry.optionalDependencies[name];
      dropped += 1;
    }
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lockfile:trim: dropped ${dropped} unfetchable optional dependencies`);
