// What a bench reads of a server process from /proc: its CPU time and its resident memory.
import { readFileSync } from 'node:fs';

/** CPU seconds (user + system) used so far, from a /proc stat file (clock ticks of 10 ms). */
function ticks(statFile) {
  const fields = readFileSync(statFile, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * A process's CPU seconds so far, and those of its main thread (the one whose id is the pid). The rest
 * is V8's helper threads (concurrent marking, parallel scavenging, background compilation) and libuv's
 * pool: half of P1's gap in CPU was there on 2026-12-06, where no main-thread profile shows it.
 */
export function cpuSeconds(pid) {
  return { total: ticks(`/proc/${pid}/stat`), main: ticks(`/proc/${pid}/task/${pid}/stat`) };
}

/** A process's resident memory in MB. */
export function rssMb(pid) {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
}
