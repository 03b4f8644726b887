// Regenerates .env.example and the README's configuration table from ENV_SPEC (src/config/env.ts),
// the one list of variables Gatehouse reads. Run `npm run env:docs` after changing a variable;
// src/config/env-docs.spec.ts fails while either file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';

const { ENV_SPEC } = await import(new URL('../dist/src/config/env.js', import.meta.url));
const { envExample, withEnvTable } = await import(new URL('../dist/src/config/env-docs.js', import.meta.url));

writeFileSync('.env.example', envExample());
writeFileSync('README.md', withEnvTable(readFileSync('README.md', 'utf8')));
console.log(`env:docs: ${Object.keys(ENV_SPEC).length} variables written to .env.example and README.md`);
