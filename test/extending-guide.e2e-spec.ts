import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';

const GUIDE = 'docs/extending.md';
const EXAMPLE = 'test/fixtures/notes';

/** A code block the guide ties to a file by the comment just above its fence. */
interface Shown {
  /** `file`: the whole file, byte for byte. `excerpt`: whole lines cut from it, indentation aside. */
  kind: 'file' | 'excerpt';
  path: string;
  code: string;
  /** Where the block starts in the guide, for the failure message. */
  line: number;
}

/** Reads `<!-- file: path -->` / `<!-- excerpt: path -->` followed by a fenced block. */
function shownIn(markdown: string): Shown[] {
  const lines = markdown.split('\n');
  const shown: Shown[] = [];
  lines.forEach((text, i) => {
    const marker = /^<!-- (file|excerpt): (\S+) -->$/.exec(text);
    if (!marker) {
      return;
    }
    // Prettier keeps one blank line between the comment and the fence.
    const fence = lines[i + 1] === '' ? i + 2 : i + 1;
    if (!lines[fence]?.startsWith('```')) {
      throw new Error(`${GUIDE}:${i + 1}: a fenced code block must follow ${text}`);
    }
    const end = lines.indexOf('```', fence + 1);
    if (end < 0) {
      throw new Error(`${GUIDE}:${fence + 1}: the code block never closes`);
    }
    const code = lines.slice(fence + 1, end).join('\n');
    shown.push({ kind: marker[1] as Shown['kind'], path: marker[2], code: `${code}\n`, line: fence + 1 });
  });
  return shown;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).split(sep).join('/'))
    .sort();
}

/** Whether `excerpt`'s lines occur one after another in `source`, leading whitespace ignored. */
function isCutFrom(excerpt: string, source: string): boolean {
  const strip = (text: string) =>
    text
      .trimEnd()
      .split('\n')
      .map((line) => line.trimStart());
  const [want, have] = [strip(excerpt), strip(source)];
  return have.some((_, start) => want.every((line, j) => have[start + j] === line));
}

/** Lines a team writes by hand: not blank, not part of an import statement, not a comment. */
function handWrittenLines(source: string): number {
  let count = 0;
  let inImport = false;
  for (const line of source.split('\n').map((text) => text.trim())) {
    if (inImport || line.startsWith('import ')) {
      inImport = !line.endsWith(';');
    } else if (line !== '' && !/^(\/\/|\/\*|\*)/.test(line)) {
      count += 1;
    }
  }
  return count;
}

describe('docs/extending.md', () => {
  const guide = readFileSync(GUIDE, 'utf8');
  const shown = shownIn(guide);
  const at = (block: Shown) => `${GUIDE}:${block.line} (${block.kind}: ${block.path})`;

  const files = shown.filter((block) => block.kind === 'file');

  it('shows every file of the notes example', () => {
    expect(files.map((block) => block.path).sort()).toEqual(filesUnder(EXAMPLE));
  });

  it.each(files)('shows $path exactly as it is', (block) => {
    expect(block.code).toBe(readFileSync(block.path, 'utf8'));
  });

  it('cuts every excerpt from the file it names', () => {
    const excerpts = shown.filter((block) => block.kind === 'excerpt');
    expect(excerpts.length).toBeGreaterThan(0);
    const drifted = excerpts.filter(
      (block) => !existsSync(block.path) || !isCutFrom(block.code, readFileSync(block.path, 'utf8')),
    );
    expect(drifted.map(at)).toEqual([]);
  });

  it('names only files that exist', () => {
    const named = [...guide.matchAll(/`((?:src|test|docs|migrations)\/[\w./-]+\.\w+)`/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(10);
    expect(named.filter((path) => !existsSync(path))).toEqual([]);
  });

  it('keeps the notes example under 150 hand-written lines (DESIGN §11)', () => {
    const lines = filesUnder(EXAMPLE).map((file) => handWrittenLines(readFileSync(file, 'utf8')));
    expect(lines.reduce((sum, n) => sum + n, 0)).toBeLessThan(150);
  });

  it('counts hand-written lines the way the target means them', () => {
    const source = [
      "import { A } from 'a';",
      'import {',
      '  B,',
      "} from 'b';",
      '',
      '/** A comment. */',
      '// Another.',
      'export class C {',
      '  x = 1;',
      '}',
    ].join('\n');
    expect(handWrittenLines(source)).toBe(3);
  });
});
