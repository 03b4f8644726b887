// Nest 12 ships ES modules only, so Jest runs in its native ESM mode (node --experimental-vm-modules,
// set by the npm scripts). Type checking is `npm run typecheck`; ts-jest only transpiles here.
const base = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    // Jest on Node 20 cannot require() an ES module, which @fastify/static does with
    // content-disposition@3; the CommonJS 2.x release has the same API. Tests only.
    '^content-disposition$': 'content-disposition-cjs',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
};

export default {
  // Each e2e file boots its own app on its own database; two workers fit this 2-core machine.
  maxWorkers: 2,
  testTimeout: 30000,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
