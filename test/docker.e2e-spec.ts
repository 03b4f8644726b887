import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { ENV_SPEC, parseEnv } from '../src/config/env.js';
import { TestApp } from './support/test-app.js';

const STAND_INS: Record<string, string> = {
  JWT_SECRET: 'q7'.repeat(24),
  MAIL_PAYLOAD_KEY: Buffer.alloc(32, 7).toString('base64'),
};

interface ComposeService {
  environment?: Record<string, string>;
  healthcheck?: { test: string[] };
  build?: { dockerfile: string };
}

/**
 * The Docker engine does not run on CI's machine, so the Docker files are checked statically: every
 * variable compose sets is one the config knows and accepts, and the health checks hit real routes.
 */
describe('docker/', () => {
  const compose = parse(readFileSync('docker/compose.yaml', 'utf8')) as {
    services: Record<string, ComposeService>;
  };
  const dockerfile = readFileSync('docker/Dockerfile', 'utf8');
  const app = compose.services.app;
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });

  afterAll(async () => {
    await t.close();
  });

  it('sets only variables the config schema knows', () => {
    const unknown = Object.keys(app.environment ?? {}).filter((name) => !(name in ENV_SPEC));
    expect(unknown).toEqual([]);
  });

  it('sets values the config accepts in production', () => {
    const env = Object.fromEntries(
      // ${VAR:?…} values are the operator's to provide; well-formed stand-ins take their place.
      Object.entries(app.environment ?? {}).map(([k, v]) => [
        k,
        String(v).startsWith('${') ? (STAND_INS[k] ?? '') : String(v),
      ]),
    );
    expect(() => parseEnv(env)).not.toThrow();
    expect(env.NODE_ENV).toBe('production');
  });

  it('sets NODE_OPTIONS that Node accepts (a typo would stop the container at boot)', () => {
    const options = /^\s*NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1];
    expect(options).toMatch(/--max-old-space-size=\d+/);
    const run = spawnSync(process.execPath, ['-e', 'process.exit(0)'], {
      env: { ...process.env, NODE_OPTIONS: options },
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it("caps glibc's malloc arenas in the stage that runs, on a glibc base image that reads the cap", () => {
    const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
    // Alpine's musl has no arenas to cap: the setting would silently do nothing there.
    expect(runtime).toMatch(/^FROM node:\d+-(bookworm|trixie)(-slim)? AS runtime$/m);
    expect(/^\s*MALLOC_ARENA_MAX=(\d+) /m.exec(runtime)?.[1]).toBe('2');
  });

  it('health-checks routes that exist and answer 200', async () => {
    const paths = [
      ...`${app.healthcheck?.test.join(' ')}\n${dockerfile}`.matchAll(/127\.0\.0\.1:[^/]*?(\/[a-z/]+)/g),
    ].map((m) => m[1]);
    expect(paths.length).toBeGreaterThanOrEqual(2);
    for (const path of new Set(paths)) {
      expect((await t.request(path)).status).toBe(200);
    }
  });

  it('builds a non-root, production-only image', () => {
    expect(app.build?.dockerfile).toBe('docker/Dockerfile');
    expect(dockerfile).toMatch(/^USER node$/m);
    // The runtime stage copies node_modules from a production-only install, never from the build.
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev$/m);
    expect(dockerfile).toMatch(/^COPY --from=runtime-deps .* \/app\/node_modules /m);
    expect(dockerfile).not.toMatch(/^COPY --from=build .*node_modules/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
  });

  it('copies into the build stage every file `npm run build` reads', () => {
    const stage = dockerfile.slice(
      dockerfile.indexOf(' AS build\n'),
      dockerfile.indexOf(' AS runtime-deps\n'),
    );
    const copied = [...stage.matchAll(/^COPY (.+) \S+$/gm)].flatMap((m) => m[1].split(' '));
    const { compilerOptions } = JSON.parse(readFileSync('nest-cli.json', 'utf8')) as {
      compilerOptions: { tsConfigPath: string };
    };
    // The SWC builder's options (.swcrc) change the emitted code: class fields, target.
    for (const file of [
      'nest-cli.json',
      '.swcrc',
      compilerOptions.tsConfigPath,
      'tsconfig.json',
      'src',
      'migrations',
    ]) {
      expect(copied).toContain(file);
    }
  });

  it('runs on Node 24 LTS', () => {
    const bases = [...dockerfile.matchAll(/^FROM (node:\S+)/gm)].map((m) => m[1]);
    expect(bases.length).toBeGreaterThanOrEqual(2);
    expect(new Set(bases)).toEqual(new Set(['node:24-bookworm-slim']));
  });

  it('keeps local state, installs and secrets out of the build context', () => {
    const ignored = readFileSync('.dockerignore', 'utf8').split('\n');
    for (const entry of ['**/node_modules', 'dist', 'var', '.env', '.env.*', '*.sqlite']) {
      expect(ignored).toContain(entry);
    }
  });

  it('runs MySQL 8.4 and Mailpit beside the app', () => {
    const services = compose.services as Record<string, { image?: string }>;
    expect(services.mysql.image).toBe('mysql:8.4');
    expect(services.mailpit.image).toMatch(/^axllent\/mailpit/);
    expect(app.environment?.MAIL_URL).toBe('smtp://mailpit:1025');
  });
});

describe('configuration docs', () => {
  it('list every variable in .env.example and the README', () => {
    const example = readFileSync('.env.example', 'utf8');
    const readme = readFileSync('README.md', 'utf8');
    for (const name of Object.keys(ENV_SPEC)) {
      expect(example).toMatch(new RegExp(`^#? ?${name}=`, 'm'));
      expect(readme).toMatch(new RegExp(`\\| \`${name}\`\\s*\\|`));
    }
  });

  it('show the two commands on the README first screen', () => {
    const firstScreen = readFileSync('README.md', 'utf8').split('\n').slice(0, 15).join('\n');
    expect(firstScreen).toContain('npm ci && npm start');
    expect(firstScreen).toContain('npm ci && npm test');
  });
});
