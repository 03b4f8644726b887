import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * V8's pretenuring decisions, printed by --trace-pretenuring-statistics ("undecided => maybe tenure",
 * "maybe tenure => tenure"), for a workload that provokes them: a rolling window of 200,000 objects
 * from one allocation site, each outliving several scavenges, like the rows and headers of requests in
 * flight. Both steps count: once the loop is optimized, Node 24 sometimes stops feeding the site back
 * after its first step, so "=> tenure" alone is not reliable there (CI saw a run without it).
 */
function pretenuringDecisions({ tuned, flags = [] }: { tuned: boolean; flags?: string[] }): string[] {
  const tuning = new URL('./heap-tuning.js', import.meta.url).href;
  const script = `
    ${tuned ? `await import(${JSON.stringify(tuning)});` : ''}
    const ring = new Array(200000);
    const make = (i) => ({ id: i, title: 'todo ' + i, at: new Date(i) });
    for (let i = 0; i < 3000000; i += 1) ring[i % ring.length] = make(i);
  `;
  const trace = execFileSync(
    process.execPath,
    [
      '--trace-pretenuring-statistics',
      '--max-semi-space-size=8',
      ...flags,
      '--input-type=module',
      '-e',
      script,
    ],
    { encoding: 'utf8' },
  );
  return trace.split('\n').filter((line) => /=> (maybe )?tenure/.test(line));
}

describe('heap tuning (imported first by main.ts)', () => {
  it('should face a Node that pretenures this workload by default, so the checks below can fail', () => {
    expect(pretenuringDecisions({ tuned: false }).length).toBeGreaterThan(0);
  });

  it('should stop V8 from pretenuring allocation sites once imported', () => {
    expect(pretenuringDecisions({ tuned: true })).toEqual([]);
  });

  it.each(['--allocation-site-pretenuring', '--allocation_site_pretenuring', '-allocation-site-pretenuring'])(
    'should leave the flag alone when the command line names it (%s)',
    (flag) => {
      expect(pretenuringDecisions({ tuned: true, flags: [flag] }).length).toBeGreaterThan(0);
    },
  );

  it('should be what main.ts imports first, before anything else loads', () => {
    const main = readFileSync(new URL('./main.js', import.meta.url), 'utf8');
    const imports = [...main.matchAll(/^import\b.*$/gm)].map(([line]) => line);
    expect(imports[0]).toBe("import './heap-tuning.js';");
  });
});
