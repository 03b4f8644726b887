import { readFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { envExample, README_MARKERS, withEnvTable } from './env-docs.js';

/** The part of the README that `npm run env:docs` owns. */
function envSection(readme: string): string {
  return readme.slice(readme.indexOf(README_MARKERS.begin), readme.indexOf(README_MARKERS.end));
}

describe('configuration docs', () => {
  it('should keep .env.example as `npm run env:docs` writes it', () => {
    expect(readFileSync('.env.example', 'utf8')).toBe(envExample());
  });

  it('should keep the README table as `npm run env:docs` writes it', async () => {
    const readme = readFileSync('README.md', 'utf8');
    const options = await resolveConfig('README.md');
    const regenerated = await format(withEnvTable(readme), { ...options, filepath: 'README.md' });
    expect(envSection(readme)).toBe(envSection(regenerated));
  });
});
