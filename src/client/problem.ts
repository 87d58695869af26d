/**
 * Refusals as typed errors. allot answers every error with an RFC 9457 problem document
 * (`application/problem+json`) whose `type` is `/problems/<code>`, one stable code per
 * meaning (src/domain/errors.ts); the client throws it as an `AllotProblem` carrying the code,
 * the status, the detail and the document's extension members (`violations`, `errors`,
 * `currentGeneration`, …), typed from the served document's `Problem` schema.
 */
import type { ErrorCode } from '../domain/errors.js';
import type { components } from './schema.js';

/** A problem document as the served document declares it. */
export type ProblemDocument = components['schemas']['Problem'];

/** The members beyond RFC 9457's own, by the code that sends them (see docs/api.md#errors). */
export type ProblemExtensions = Omit<ProblemDocument, 'type' | 'title' | 'status' | 'detail' | 'instance'>;

/**
 * An allot error code; any other string when the server (a newer one, or a proxy in front of
 * it) answers with a type this client does not know, and `unexpected-response` when the answer
 * is no problem document at all.
 */
export type ProblemCode = ErrorCode | 'unexpected-response' | (string & {});

const baseMembers = new Set(['type', 'title', 'status', 'detail', 'instance']);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// The extension members are the instance's own properties, typed from the document.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface AllotProblem extends Readonly<Partial<ProblemExtensions>> {}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class AllotProblem extends Error {
  override name = 'AllotProblem';
  /** The stable code: the last segment of `type` (`quota-exceeded`). */
  readonly code: ProblemCode;
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly instance: string | undefined;
  /** The document as sent (undefined when the answer was not one). */
  readonly document: ProblemDocument | undefined;
  /** The HTTP response (its body already read). */
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const document = isObject(body) && typeof body.type === 'string' ? (body as ProblemDocument) : undefined;
    const code = document ? (/\/problems\/([^/?#]+)$/.exec(document.type)?.[1] ?? document.type) : 'unexpected-response';
    const detail = document
      ? String(document.detail ?? '')
      : `HTTP ${response.status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`;
    super(`${response.status} ${code}: ${detail}`);
    this.code = code;
    this.status = response.status;
    this.type = document?.type ?? 'about:blank';
    this.title = document?.title ?? response.statusText;
    this.detail = detail;
    this.instance = document?.instance;
    this.document = document;
    this.response = response;
    if (document) {
      for (const [member, value] of Object.entries(document)) {
        if (!baseMembers.has(member) && !(member in this)) Object.defineProperty(this, member, { value, enumerable: true });
      }
    }
  }

  /** Is `error` an AllotProblem (of this code, when given: one the server knows, so a typo does not compile)? */
  static is(error: unknown, code?: ErrorCode | 'unexpected-response'): error is AllotProblem {
    return error instanceof AllotProblem && (code === undefined || error.code === code);
  }
}
