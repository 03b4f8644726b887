export { setup as default } from './openapi-count.mjs';
