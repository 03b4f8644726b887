// Runs once in each test worker before any test file (jest.config.mjs `setupFiles`).
// Stack traces point at the TypeScript sources, not the compiled files in dist/.
process.setSourceMapsEnabled(true);
