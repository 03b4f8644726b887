import { ENV_SPEC } from './env.js';

/**
 * `.env.example` and the README's configuration table, rendered from ENV_SPEC. `npm run env:docs`
 * writes them (scripts/env-docs.mjs); env-docs.spec.ts fails while either file differs.
 */
export const README_MARKERS = { begin: '<!-- env:begin -->', end: '<!-- env:end -->' } as const;

const specs = () => Object.entries(ENV_SPEC);

export function envExample(): string {
  const lines = [
    '# Gatehouse configuration. Every variable is optional in development: `npm start` needs none of them.',
    '# Copy to .env (read at start-up) or set them in the environment. Production refuses to boot without',
    '# JWT_SECRET, MAIL_URL, MAIL_PAYLOAD_KEY and APP_PUBLIC_URL. Durations: 900s, 15m, 24h, 30d. Sizes: 100kb, 1mb.',
    '',
  ];
  for (const [name, spec] of specs()) {
    lines.push(
      `# ${spec.description}`,
      spec.default !== undefined ? `${name}=${spec.default}` : `# ${name}=`,
      '',
    );
  }
  return lines.join('\n');
}

/** The markdown table, before Prettier aligns its columns. */
export function envTable(): string {
  const rows = specs().map(
    ([name, spec]) =>
      `| \`${name}\` | ${spec.default === undefined ? '—' : `\`${spec.default || '(empty)'}\``} | ${spec.description} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** `readme` with the table between the env markers replaced. */
export function withEnvTable(readme: string, table = envTable()): string {
  const start = readme.indexOf(README_MARKERS.begin);
  const stop = readme.indexOf(README_MARKERS.end);
  if (start === -1 || stop === -1) {
    throw new Error(`README.md lacks the ${README_MARKERS.begin} / ${README_MARKERS.end} markers`);
  }
  return `${readme.slice(0, start + README_MARKERS.begin.length)}\n\n${table}\n\n${readme.slice(stop)}`;
}
