// The README's "typed client in ten lines", compiled with the repo (test/readme.e2e-spec.ts keeps the two equal).
import { createGatehouseClient } from './gatehouse-client.js';

const gatehouse = createGatehouseClient({ baseUrl: 'http://localhost:3000' });
const { EMAIL: email = '', PASSWORD: password = '' } = process.env;
await gatehouse.POST('/api/v1/auth/login', { body: { email, password } });
await gatehouse.POST('/api/v1/todos', { body: { title: 'Renew the TLS certificate', completed: false } });
const { data, error } = await gatehouse.GET('/api/v1/todos', { params: { query: { limit: 20 } } });
data?.items.forEach((todo) => console.log(todo.id, todo.title, todo.completed));
console.log(error ?? `next page: ${data?.nextCursor ?? 'none'}`); // error: the problem+json body
await gatehouse.POST('/api/v1/auth/logout');
