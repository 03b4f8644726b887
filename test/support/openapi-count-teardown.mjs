export { teardown as default } from './openapi-count.mjs';
