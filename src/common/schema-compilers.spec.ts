import { fastify } from 'fastify';
import { compilersOnDemand } from './schema-compilers.js';

describe(compilersOnDemand.name, () => {
  it('should validate and serialize a route that declares a schema, as Fastify would', async () => {
    const app = fastify({ schemaController: { compilersFactory: compilersOnDemand() } });
    app.post(
      '/echo',
      {
        schema: {
          body: {
            type: 'object',
            required: ['n'],
            properties: { n: { type: 'integer', minimum: 1 } },
          },
          response: { 200: { type: 'object', properties: { n: { type: 'integer' } } } },
        },
      },
      (request) => ({ ...(request.body as { n: number }), secret: 'not in the schema' }),
    );
    try {
      const good = await app.inject({ method: 'POST', url: '/echo', payload: { n: 2 } });
      expect(good.statusCode).toBe(200);
      expect(good.json()).toEqual({ n: 2 }); // the serializer drops what the schema does not name
      const bad = await app.inject({ method: 'POST', url: '/echo', payload: { n: 0 } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe('FST_ERR_VALIDATION');
    } finally {
      await app.close();
    }
  });
});
