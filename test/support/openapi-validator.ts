import { appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { isEmail } from 'class-validator';

// ajv-formats is CommonJS with a default export; under NodeNext it arrives as the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** Where each TestApp adds how many responses it validated; globalTeardown sums it (see jest.config.mjs). */
export const VALIDATED_COUNT_FILE = join(tmpdir(), 'gatehouse-openapi-validated.log');

type Schema = Record<string, unknown>;

interface Header {
  required?: boolean;
  schema?: Schema;
}

interface Response {
  headers?: Record<string, Header>;
  content?: Record<string, { schema?: Schema }>;
}

interface Operation {
  operationId?: string;
  responses: Record<string, Response>;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

interface Route {
  template: string;
  pattern: RegExp;
  /** Literal characters in the template: `/todos/mine` beats `/todos/{id}`. */
  specificity: number;
  operations: Record<string, Operation>;
}

export interface ReceivedResponse {
  method: string;
  /** The request path, query string included. */
  url: string;
  status: number;
  headers: Headers;
  text: string;
  body: unknown;
}

/**
 * Checks a response against the OpenAPI document of the app that gave it (DESIGN §4: the document is
 * the contract, so it cannot drift): the status must be documented for the operation, the media type
 * and body must match its schema, and documented headers must be present when required and match
 * their schema when sent. Paths the document does not describe (HTML pages, /docs) are not checked.
 */
export class OpenApiResponseValidator {
  private readonly ajv: Ajv;
  private readonly routes: Route[];
  private readonly compiled = new Map<string, ValidateFunction>();
  validated = 0;

  constructor(private readonly document: OpenApiDocument) {
    // OpenAPI 3.0 schemas: `nullable` is Ajv's own OpenAPI keyword; `example` and friends are ignored.
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, discriminator: false });
    addFormats(this.ajv);
    // ajv-formats has no idn-email: the app's own rule (IsEmailAddress) is class-validator's isEmail.
    this.ajv.addFormat('idn-email', (value: string) => isEmail(value));
    this.routes = Object.entries(document.paths).map(([template, operations]) => ({
      template,
      pattern: new RegExp(
        `^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`,
      ),
      specificity: template.replace(/\{[^}]+\}/g, '').length,
      operations,
    }));
    this.routes.sort((a, b) => b.specificity - a.specificity);
  }

  /** Throws, naming the operation and what is wrong, if the response breaks the document. */
  check(response: ReceivedResponse): void {
    const path = decodeURI(response.url.split('?')[0]);
    const method = response.method.toLowerCase();
    const route = this.routes.find(
      (candidate) => candidate.pattern.test(path) && candidate.operations[method],
    );
    if (!route) {
      return;
    }
    const operation = route.operations[method];
    const where = `${response.method.toUpperCase()} ${route.template} (${operation.operationId ?? '?'})`;
    const documented =
      operation.responses[String(response.status)] ?? operation.responses[`${String(response.status)[0]}XX`];
    const fail = (problem: string): never => {
      throw new Error(
        `OpenAPI: ${where} answered ${response.status}: ${problem}\n` +
          `  body: ${response.text.slice(0, 500)}\n` +
          '  Fix the document (the decorators that build openapi.json) or the behaviour; see test/support/openapi-validator.ts.',
      );
    };
    if (!documented) {
      fail(
        `status ${response.status} is not documented (documented: ${Object.keys(operation.responses).join(', ')})`,
      );
    }
    this.checkHeaders(documented, response.headers, fail);
    this.checkBody(`${method} ${route.template} ${response.status}`, documented, response, fail);
    this.validated += 1;
  }

  private checkHeaders(documented: Response, headers: Headers, fail: (problem: string) => never): void {
    for (const [name, header] of Object.entries(documented.headers ?? {})) {
      const value = headers.get(name);
      if (value === null) {
        if (header.required) {
          fail(`the required header ${name} is missing`);
        }
        continue;
      }
      if (header.schema) {
        const typed =
          header.schema.type === 'integer' || header.schema.type === 'number' ? Number(value) : value;
        const validate = this.compile(`header ${JSON.stringify(header.schema)}`, header.schema);
        if (!validate(typed)) {
          fail(`header ${name}: ${JSON.stringify(value)} ${this.ajv.errorsText(validate.errors)}`);
        }
      }
    }
  }

  private checkBody(
    key: string,
    documented: Response,
    response: ReceivedResponse,
    fail: (problem: string) => never,
  ) {
    const content = documented.content;
    if (!content || Object.keys(content).length === 0) {
      if (response.text.length > 0) {
        fail('the document declares no body for this status, but one was sent');
      }
      return;
    }
    const mediaType = (response.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
    const declared = content[mediaType];
    if (!declared) {
      fail(
        `content-type ${JSON.stringify(mediaType)} is not documented (documented: ${Object.keys(content).join(', ')})`,
      );
    }
    if (!declared.schema) {
      return;
    }
    const validate = this.compile(`${key} ${mediaType}`, declared.schema);
    const body = mediaType.endsWith('json') ? response.body : response.text;
    if (!validate(body)) {
      fail(
        `the body does not match its schema: ${this.ajv.errorsText(validate.errors, { dataVar: 'body' })}`,
      );
    }
  }

  private compile(key: string, schema: Schema): ValidateFunction {
    let validate = this.compiled.get(key);
    if (!validate) {
      // `#/components/schemas/X` references resolve against the document's own components.
      validate = this.ajv.compile({ ...schema, components: this.document.components });
      this.compiled.set(key, validate);
    }
    return validate;
  }

  /** Records how many responses this app validated, for the run's total (printed by globalTeardown). */
  record(): void {
    appendFileSync(VALIDATED_COUNT_FILE, `${this.validated}\n`);
  }
}
