// Jest globalSetup/globalTeardown of the e2e project: every TestApp appends how many responses it
// validated against the OpenAPI document (test/support/openapi-validator.ts); the total is printed.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FILE = join(tmpdir(), 'gatehouse-openapi-validated.log');

export function setup() {
  rmSync(FILE, { force: true });
}

export function teardown() {
  const counts = existsSync(FILE) ? readFileSync(FILE, 'utf8').split('\n').filter(Boolean).map(Number) : [];
  const total = counts.reduce((sum, n) => sum + n, 0);
  console.log(
    `\nOpenAPI: ${total} responses validated against the document (${counts.length} app instances).`,
  );
}
