import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The module boundaries of DESIGN §2, checked on the import statements of every file under src/:
 * each folder of src/ is a module, and this table says which other folders it may import. Folders
 * higher up compose the ones below; `users`, `tokens`, `mail`, `audit` sit one layer under `auth`,
 * where `audit` and `mail` are sinks that import no feature. A folder missing from the table fails
 * the check until its place is decided here. The files at the top of src/ (main.ts, app.*, cli.ts,
 * features.ts) wire everything together and may import anything.
 */
const LAYERS = {
  admin: ['auth', 'users', 'tokens', 'mail', 'audit', 'metrics', 'events', 'database', 'config', 'common'],
  todos: ['owned', 'auth', 'users', 'audit', 'events', 'database', 'config', 'common'],
  health: ['mail', 'database', 'config', 'common'],
  pages: ['config', 'common'],
  auth: ['users', 'tokens', 'mail', 'audit', 'metrics', 'events', 'database', 'config', 'common'],
  // The base of every user-owned resource: owner scoping, audit, events.
  owned: ['users', 'audit', 'events', 'database', 'common'],
  // Injected by auth to count logins and throttles; reads the outbox backlog at scrape time.
  metrics: ['mail', 'database', 'config', 'common'],
  users: ['audit', 'mail', 'events', 'database', 'config', 'common'],
  // Token rows reference their user.
  tokens: ['users', 'audit', 'mail', 'events', 'database', 'config', 'common'],
  mail: ['events', 'database', 'config', 'common'],
  audit: ['events', 'database', 'config', 'common'],
  // After-commit delivery hangs on the unit of work.
  events: ['database'],
  database: ['config', 'common'],
  common: ['config'],
  config: [],
} as const satisfies Record<string, readonly string[]>;

/** Base classes for the repositories of other modules to extend: not a table's data access. */
const REPOSITORY_BASES: readonly string[] = ['owned/owned.repository.ts'];

/**
 * Violations the tree has today, each one to be fixed and then deleted from this list (issue 10).
 * The check fails on any violation not listed here, and on an entry that no longer occurs, so the
 * list only shrinks.
 */
const KNOWN_VIOLATIONS: readonly string[] = [];

/** One import statement: the importing file and the file it names, both relative to src/. */
interface Import {
  file: string;
  specifier: string;
  target: string;
}

type Layers = Readonly<Record<string, readonly string[]>>;

/** The module a file belongs to: its first folder under src/, TOP for the files at the top. */
const TOP = '(top of src)';
const OUTSIDE = '(outside src)';

function moduleOf(path: string): string {
  if (path.startsWith('../')) {
    return OUTSIDE;
  }
  return path.includes('/') ? path.slice(0, path.indexOf('/')) : TOP;
}

/**
 * The relative imports of one file: `import`, `import type`, `export … from`, `import('…')` and
 * `declare module '…'` (an augmentation depends on the module it extends). TypeScript's own
 * pre-processor reads them, so comments and strings that merely look like imports are skipped.
 */
function importsOf(file: string, source: string): Import[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map(({ fileName }) => fileName)
    .filter((specifier) => specifier.startsWith('.'))
    .map((specifier) => ({
      file,
      specifier,
      target: posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, '.ts'),
    }));
}

/**
 * Every import in the .ts files under `root`. Unit specs are left out: they are not part of the
 * built app (tsconfig.build.json excludes them), and a spec may reach for whatever it needs to build
 * its fakes.
 */
function importsUnder(root: string): Import[] {
  const files = readdirSync(root, { recursive: true, encoding: 'utf8' }).filter(
    (name) => name.endsWith('.ts') && !name.endsWith('.spec.ts') && !name.endsWith('.d.ts'),
  );
  return files.flatMap((name) => {
    const file = name.split(sep).join('/');
    return importsOf(file, readFileSync(join(root, name), 'utf8'));
  });
}

/** Imports that cross from one module to another, grouped by `from → to`. */
function crossings(imports: readonly Import[]): Map<string, Import[]> {
  const edges = new Map<string, Import[]>();
  for (const edge of imports) {
    const [from, to] = [moduleOf(edge.file), moduleOf(edge.target)];
    if (from !== to) {
      const key = `${from} → ${to}`;
      edges.set(key, [...(edges.get(key) ?? []), edge]);
    }
  }
  return edges;
}

/** A cycle through each group of modules that import each other, e.g. `auth → users → auth`. */
function cyclesOf(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const cycles: string[][] = [];
  const inCycle = new Set<string>();
  for (const start of [...graph.keys()].sort()) {
    if (inCycle.has(start)) {
      continue;
    }
    // The shortest way back to `start`, breadth first.
    const cameFrom = new Map<string, string>();
    const queue = [start];
    let closing: string | undefined;
    while (queue.length > 0 && closing === undefined) {
      const node = queue.shift()!;
      for (const next of [...(graph.get(node) ?? [])].sort()) {
        if (next === start) {
          closing = node;
          break;
        }
        if (!cameFrom.has(next)) {
          cameFrom.set(next, node);
          queue.push(next);
        }
      }
    }
    if (closing !== undefined) {
      const path = [closing];
      while (path[0] !== start) {
        path.unshift(cameFrom.get(path[0])!);
      }
      path.forEach((node) => inCycle.add(node));
      cycles.push([...path, start]);
    }
  }
  return cycles;
}

/**
 * Every boundary violation, keyed by a stable one-line name (what KNOWN_VIOLATIONS lists), with the
 * import statements behind it:
 * - `cycle: a → b → a`: modules that import each other, directly or around a longer loop;
 * - `repository: a/x.ts → b/y.repository.ts`: a module using another's repository instead of the
 *   services it exports;
 * - `layer: a → b`: an import the layer table does not allow (or from a folder it does not list).
 */
function violations(imports: readonly Import[], layers: Layers): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (key: string, lines: string[]) => found.set(key, [...(found.get(key) ?? []), ...lines]);
  const show = (edge: Import) => `${edge.file} imports '${edge.specifier}'`;
  const edges = crossings(imports);

  const graph = new Map<string, Set<string>>();
  for (const key of edges.keys()) {
    const [from, to] = key.split(' → ');
    graph.set(from, (graph.get(from) ?? new Set()).add(to));
  }
  for (const cycle of cyclesOf(graph)) {
    const steps = cycle.slice(1).map((to, i) => edges.get(`${cycle[i]} → ${to}`)![0]);
    add(`cycle: ${cycle.join(' → ')}`, steps.map(show));
  }

  for (const [key, list] of edges) {
    const [from, to] = key.split(' → ');
    for (const edge of list.filter(
      (e) => /\.repository\.ts$/.test(e.target) && !REPOSITORY_BASES.includes(e.target),
    )) {
      add(`repository: ${edge.file} → ${edge.target}`, [
        `${show(edge)}: use a service that ${to} exports instead`,
      ]);
    }
    if (from === TOP) {
      continue;
    }
    const allowed = layers[from];
    if (allowed === undefined) {
      add(`layer: ${key}`, [`${from}/ is not in LAYERS: decide which folders it may import`]);
    } else if (!allowed.includes(to)) {
      add(`layer: ${key}`, [`${from} may import only ${allowed.join(', ') || 'nothing'}`, ...list.map(show)]);
    }
  }
  return found;
}

/** What a failure prints: the violation, then the imports behind it, indented. */
function describeAll(found: Map<string, string[]>, keys: readonly string[]): string[] {
  return keys.map((key) => [key, ...(found.get(key) ?? []).map((line) => `    ${line}`)].join('\n'));
}

describe('module boundaries', () => {
  const SRC = resolve(process.cwd(), 'src');
  const imports = importsUnder(SRC);
  const found = violations(imports, LAYERS);

  it('should read the imports it checks', () => {
    const edges = [...crossings(imports).keys()];
    expect(imports.length).toBeGreaterThan(200);
    expect(edges).toEqual(expect.arrayContaining(['todos → owned', 'auth → users', 'owned → events']));
  });

  it('should find no folder cycle, cross-module repository import or import against the layers beyond KNOWN_VIOLATIONS', () => {
    const fresh = [...found.keys()].filter((key) => !KNOWN_VIOLATIONS.includes(key)).sort();
    expect(describeAll(found, fresh)).toEqual([]);
  });

  it('should list in KNOWN_VIOLATIONS only violations that still occur (delete the fixed ones)', () => {
    expect(KNOWN_VIOLATIONS.filter((key) => !found.has(key))).toEqual([]);
  });

  it('should declare layers without a cycle, and only folders that exist', () => {
    const graph = new Map(Object.entries(LAYERS).map(([from, to]) => [from, new Set<string>(to)]));
    expect(cyclesOf(graph)).toEqual([]);
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((entry) => entry.isDirectory());
    expect(Object.keys(LAYERS).sort()).toEqual(folders.map((entry) => entry.name).sort());
  });
});

describe('the boundary checker', () => {
  const FAKE_LAYERS: Layers = {
    auth: ['users', 'common'],
    users: ['common'],
    notes: ['owned', 'common'],
    owned: ['common'],
    common: [],
  };
  const imp = (file: string, specifier: string): Import[] => importsOf(file, `import x from '${specifier}';`);

  it('should read every kind of relative import, and nothing in comments or strings', () => {
    const source = [
      "import type { A } from '../users/a.js';",
      "export { B } from './b.js';",
      "import './side-effect.js';",
      "const c = await import('../common/c.js');",
      "declare module '../events/domain-events.js' {}",
      "import { Injectable } from '@nestjs/common';",
      "// import { D } from '../admin/d.js';",
      'const text = "from \'../admin/e.js\'";',
    ].join('\n');
    expect(importsOf('auth/login.service.ts', source).map((edge) => edge.target)).toEqual([
      'users/a.ts',
      'auth/b.ts',
      'auth/side-effect.ts',
      'common/c.ts',
      'events/domain-events.ts',
    ]);
  });

  it('should pass imports that follow the layers', () => {
    const ok = [
      ...imp('auth/login.service.ts', '../users/users.service.js'),
      ...imp('auth/login.service.ts', './sessions.repository.js'),
      ...imp('users/users.service.ts', '../common/clock.js'),
      ...imp('features.ts', './auth/auth.module.js'),
      ...imp('notes/notes.repository.ts', '../owned/owned.repository.js'),
    ];
    expect([...violations(ok, FAKE_LAYERS).keys()]).toEqual([]);
  });

  it('should name a folder cycle and the imports that close it', () => {
    const found = violations(
      [
        ...imp('auth/login.service.ts', '../users/users.service.js'),
        ...imp('users/users.service.ts', '../auth/decorators.js'),
      ],
      FAKE_LAYERS,
    );
    expect(found.get('cycle: auth → users → auth')).toEqual([
      "auth/login.service.ts imports '../users/users.service.js'",
      "users/users.service.ts imports '../auth/decorators.js'",
    ]);
    expect(found.has('layer: users → auth')).toBe(true);
  });

  it('should find a cycle around three folders', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
    ]);
    expect(cyclesOf(graph)).toEqual([['a', 'b', 'c', 'a']]);
  });

  it("should refuse another module's repository, type-only imports included", () => {
    const found = violations(
      importsOf(
        'auth/login.service.ts',
        "import type { UsersRepository } from '../users/users.repository.js';",
      ),
      FAKE_LAYERS,
    );
    expect([...found.keys()]).toEqual(['repository: auth/login.service.ts → users/users.repository.ts']);
  });

  it('should refuse an import against the layers, and a folder the table does not list', () => {
    const found = violations(
      [
        ...imp('users/users.service.ts', '../auth/x.js'),
        ...imp('billing/billing.service.ts', '../common/y.js'),
      ],
      FAKE_LAYERS,
    );
    expect(describeAll(found, [...found.keys()])).toEqual([
      "layer: users → auth\n    users may import only common\n    users/users.service.ts imports '../auth/x.js'",
      'layer: billing → common\n    billing/ is not in LAYERS: decide which folders it may import',
    ]);
  });
});
