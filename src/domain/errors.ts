/**
 * The errors allot answers the world with: one table of codes, each with its HTTP status and
 * title. Codes are stable (never renamed) and become the problem `type` (`/problems/<code>`).
 * A denial (`quota-exceeded`, `duplicate-allocation`) and a malformed request are different
 * codes, so a client never parses text to decide what to do.
 */
export const errorCodes = {
  'invalid-request': { status: 400, title: 'The request is invalid' },
  unauthorized: { status: 401, title: 'Authentication is required' },
  forbidden: { status: 403, title: 'Your role may not do this' },
  'not-found': { status: 404, title: 'Not found' },
  'method-not-allowed': { status: 405, title: 'The resource does not allow this method; see the Allow header' },
  'quota-exceeded': { status: 409, title: 'The change would exceed a quota' },
  'duplicate-allocation': {
    status: 409,
    title: 'The referenced resource already has a live allocation',
  },
  'quota-below-usage': {
    status: 409,
    title: 'The quota is below current usage; repeat with force=true to set it anyway',
  },
  'guarantees-exceed-quota': {
    status: 409,
    title: "The projects' guarantees would add up to more than the organization's quota",
  },
  'guarantee-unavailable': {
    status: 409,
    title:
      "The organization's usage leaves too little for the projects' guarantees; repeat with force=true to set it anyway",
  },
  'project-not-empty': {
    status: 409,
    title: 'The project still has live allocations or pending holds; repeat with cascade=true to release them',
  },
  'hold-already-resolved': { status: 409, title: 'The hold has already been resolved' },
  'confirm-exceeds-hold': { status: 409, title: 'A hold can be confirmed for at most what it holds' },
  'quota-request-open': {
    status: 409,
    title: 'An open quota request for this kind and scope exists; see openRequest',
  },
  'quota-request-resolved': { status: 409, title: 'The quota request has already left pending' },
  'decrease-needs-force': {
    status: 409,
    title: "The cut is deeper than the kind's safety check allows; repeat with force to request it anyway",
  },
  'request-in-progress': {
    status: 409,
    title: 'A request with this idempotency key is still being processed; retry later',
  },
  'precondition-failed': {
    status: 412,
    title: 'The resource has changed since the ETag given in If-Match; read it again and retry',
  },
  'idempotency-key-reused': {
    status: 422,
    title: 'The idempotency key was already used for a different request',
  },
  'payload-too-large': { status: 413, title: 'The request body is too large' },
  'too-many-requests': { status: 429, title: 'Too many requests; retry later' },
  'unsupported-media-type': { status: 415, title: 'The request body must be application/json' },
  'internal-error': { status: 500, title: 'Internal error' },
  'service-unavailable': { status: 503, title: 'The service is unavailable' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** The level that refused: the project's cap, the organization's quota, or the other projects' guarantees. */
export type ViolationScope = 'project' | 'organization' | 'guarantees';

export interface Violation {
  kind: string;
  scope: ViolationScope;
  /** How much the change adds to the kind's usage. */
  requested: number;
  /** Usage before the change. */
  used: number;
  /**
   * The limit in force at that level: the project's cap; the organization's quota (or the
   * kind's default, or `quantityMax` when unlimited); for guarantees, that quota less what the
   * other projects' guarantees keep back. `used` is the project's usage for `project`, the
   * organization's otherwise.
   */
  limit: number;
}

export interface FieldError {
  field: string;
  message: string;
}

/** Extra members of a problem document, by code. */
export interface ProblemExtensions {
  violations?: Violation[];
  existingAllocationId?: string;
  /** For quota-below-usage: per kind, the new limit and the usage it is below (the project's for a cap). */
  belowUsage?: { kind: string; quantity: number; used: number }[];
  /** For guarantees-exceed-quota: per kind, the guarantees' sum after the change and the quota. */
  overGuaranteed?: { kind: string; organization?: string; guaranteed: number; quantity: number }[];
  /** For guarantee-unavailable: per kind, usage plus what guarantees keep back, and the quota. */
  unavailable?: { kind: string; used: number; keptBack: number; quantity: number }[];
  /** For project-not-empty: what is still there. */
  live?: { allocations: number; holds: number };
  /** For quota-request-open: the id of the open request. */
  openRequest?: string;
  /** For quota-request-resolved: how the request ended. */
  state?: string;
  /** How a hold was resolved, for hold-already-resolved. */
  resolution?: 'confirmed' | 'released' | 'expired';
  /** The generation the resource has now, for precondition-failed. */
  currentGeneration?: number;
  errors?: FieldError[];
}

export class AllotError extends Error {
  override name = 'AllotError';
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extensions: ProblemExtensions = {},
    /** What caused it, for the logs (a lost database connection); never sent. */
    options: { cause?: unknown } = {},
  ) {
    super(detail, options);
    this.status = errorCodes[code].status;
  }
}

export const notFound = (what: string) => new AllotError('not-found', `${what} does not exist`);

export const invalid = (field: string, message: string) =>
  new AllotError('invalid-request', `${field}: ${message}`, { errors: [{ field, message }] });
