// Regenerates .env.example and the README's configuration table from ENV_SPEC (src/config/env.ts),
// the one list of variables Gatehouse reads. Run `npm run env:docs` after adding a variable; a test
// fails while either file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';

const { ENV_SPEC } = await import(new URL('../dist/src/config/env.js', import.meta.url));

const example = [
  '# Gatehouse configuration. Every variable is optional in development: `npm start` needs none of them.',
  '# Copy to .env (read at start-up) or set them in the environment. Production refuses to boot without',
  '# JWT_SECRET, MAIL_URL, MAIL_PAYLOAD_KEY and APP_PUBLIC_URL. Durations: 900s, 15m, 24h, 30d. Sizes: 100kb, 1mb.',
  '',
];
for (const [name, spec] of Object.entries(ENV_SPEC)) {
  example.push(
    `# ${spec.description}`,
    spec.default !== undefined ? `${name}=${spec.default}` : `# ${name}=`,
    '',
  );
}
writeFileSync('.env.example', example.join('\n'));

const rows = Object.entries(ENV_SPEC).map(
  ([name, spec]) =>
    `| \`${name}\` | ${spec.default === undefined ? '—' : `\`${spec.default || '(empty)'}\``} | ${spec.description} |`,
);
const table = ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
const readme = readFileSync('README.md', 'utf8');
const begin = '<!-- env:begin -->';
const end = '<!-- env:end -->';
const start = readme.indexOf(begin);
const stop = readme.indexOf(end);
if (start === -1 || stop === -1) {
  throw new Error('README.md lacks the env:begin / env:end markers');
}
writeFileSync('README.md', `${readme.slice(0, start + begin.length)}\n\n${table}\n\n${readme.slice(stop)}`);
console.log(`env:docs: ${rows.length} variables written to .env.example and README.md`);
