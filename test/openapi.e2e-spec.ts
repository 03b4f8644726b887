import { readFileSync } from 'node:fs';
import { TestApp } from './support/test-app.js';

describe('the OpenAPI document', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });

  afterAll(async () => {
    await t.close();
  });

  it('is served at /docs/openapi.json with bearer auth declared', async () => {
    const res = await t.request('/docs/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(res.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready']));
  });

  it('serves the Swagger UI at /docs', async () => {
    const res = await t.request('/docs');
    expect(res.status).toBe(200);
    expect(res.text).toContain('swagger-ui');
  });

  it('matches the committed openapi.json (run `npm run openapi` after changing the API)', async () => {
    const committed = JSON.parse(readFileSync('openapi.json', 'utf8'));
    const served = (await t.request('/docs/openapi.json')).body;
    expect(served).toEqual(committed);
  });
});
