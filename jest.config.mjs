// Tests run on the compiled output in dist/ (`npm run build:test`), in plain Node, through
// jest-light-runner: every module loads exactly as it does in production (native ESM, the same
// CommonJS interop), instead of through Jest's own module registry. Jest stays the framework:
// describe/it/expect, jest.fn/spyOn, projects, --selectProjects, -t.
const base = {
  runner: 'jest-light-runner',
  roots: ['<rootDir>/dist'],
  setupFiles: ['<rootDir>/jest.setup.mjs'],
};

export default {
  // Each e2e file boots its own app on its own database; two workers fit this 2-core machine.
  maxWorkers: 2,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/dist/src/**/*.spec.js'] },
    {
      ...base,
      displayName: 'e2e',
      testMatch: ['<rootDir>/dist/test/**/*.e2e-spec.js'],
      // Prints how many responses the run validated against the OpenAPI document.
      globalSetup: '<rootDir>/test/support/openapi-count-setup.mjs',
      globalTeardown: '<rootDir>/test/support/openapi-count-teardown.mjs',
    },
  ],
};
