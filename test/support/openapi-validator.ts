/**
 * Checks an answer of the server against the OpenAPI document it serves: the operation exists
 * for the method and path, the status is declared for it, the media type is the declared one
 * (problems as application/problem+json), the declared headers are present where the server
 * promises them (ETag, Location), and the body matches the declared schema. The API tests send
 * every request through `send` (test/api/harness.ts), which asks this, so an undeclared status
 * or shape fails the suite wherever a test meets it.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';

// ajv-formats is CommonJS: its default import is the module, whose `default` is the plugin.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;

interface Response {
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema?: unknown }>;
}
interface Operation {
  operationId?: string;
  responses?: Record<string, Response>;
}
interface Route {
  pattern: RegExp;
  operations: Record<string, Operation>;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
}

class Validator {
  private readonly routes: Route[];
  private readonly ajv: Ajv;
  private readonly compiled = new Map<unknown, ValidateFunction>();
  private readonly passed = new Set<string>();
  /** Carried by every compiled schema, so `#/components/schemas/…` resolves inside it. */
  private readonly components: object;

  constructor(document: { paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, unknown> } }) {
    this.ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.components = document.components ?? {};
    this.routes = Object.entries(document.paths).map(([path, operations]) => ({
      pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      operations,
    }));
  }

  /** What is wrong with `answer` to `method url` (empty: nothing). */
  check(method: string, url: string, answer: Answer): string[] {
    const path = url.split('?')[0]!;
    // Everything the judgement reads, the body last: an answer found right once is right again
    // (the API tests' snapshots read the same answers over and over).
    const { 'content-type': type, etag, location } = answer.headers;
    const key = [method, path, answer.status, type, etag !== undefined, location !== undefined, answer.text].join('\n');
    if (this.passed.has(key)) return [];
    const problems = this.judge(method, path, answer);
    if (problems.length === 0) this.passed.add(key);
    return problems;
  }

  private judge(method: string, path: string, answer: Answer): string[] {
    const route = this.routes.find((candidate) => candidate.pattern.test(path));
    // Not an operation of the document: the dashboard's files, /healthz, unknown paths (404).
    if (!route) return [];
    const operation = route.operations[method.toLowerCase()];
    // A method the path lacks answers 405, which the document states for the whole API — after
    // authentication and the tenant's visibility, as every /v1 path (401, 404, 429).
    if (!operation) {
      return [401, 404, 405, 429].includes(answer.status) ? [] : [`${method} ${path}: no such operation, answered ${answer.status}`];
    }
    const name = `${operation.operationId} (${method} ${path}) ${answer.status}`;
    const response = operation.responses?.[String(answer.status)] ?? operation.responses?.default;
    if (!response) return [`${name}: status not declared`];
    const problems: string[] = [];
    const type = String(answer.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (!response.content) {
      if (answer.text.length > 0) problems.push(`${name}: a body where none is declared`);
      return problems;
    }
    const media = response.content[type];
    if (!media) return [`${name}: content-type ${type || '(none)'} not declared (${Object.keys(response.content).join(', ')})`];
    for (const header of Object.keys(response.headers ?? {})) {
      // Promised on every such answer; Idempotent-Replayed and Retry-After only on some.
      if ((header === 'ETag' || header === 'Location') && answer.headers[header.toLowerCase()] === undefined) {
        problems.push(`${name}: header ${header} declared but not sent`);
      }
    }
    if (type !== 'application/json' && type !== 'application/problem+json') return problems;
    let validate = this.compiled.get(media.schema);
    if (!validate) {
      validate = this.ajv.compile({ allOf: [media.schema], components: this.components });
      this.compiled.set(media.schema, validate);
    }
    if (!validate(JSON.parse(answer.text))) {
      problems.push(`${name}: body breaks its schema: ${this.ajv.errorsText(validate.errors)}`);
    }
    return problems;
  }
}

const validators = new WeakMap<FastifyInstance, Validator>();
const byDocument = new Map<string, Validator>();

/** The validator of an app's own document (built once per document, for every app serving it). */
export function validatorOf(app: FastifyInstance): Validator {
  let validator = validators.get(app);
  if (!validator) {
    const document = app.swagger() as unknown as ConstructorParameters<typeof Validator>[0];
    const text = JSON.stringify(document);
    validator = byDocument.get(text) ?? new Validator(document);
    byDocument.set(text, validator);
    validators.set(app, validator);
  }
  return validator;
}
