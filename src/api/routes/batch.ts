/**
 * `POST /v1/organizations/{org}/batch`: up to 1,000 allocation and hold operations of one
 * organization in one decision (see ledger/engine/batch.ts). Each entry is checked and
 * authorized as its own route would check it; its result is what that route would answer.
 * `atomic`: on a refusal nothing is written, and the answer is that refusal's problem, naming
 * the operation (`failedOperation`), with every entry's result (the others not applied).
 */
import { Ajv } from 'ajv';
import type { FastifyRequest } from 'fastify';
import { canSee } from '../../domain/access.js';
import { AllotError, notFound } from '../../domain/errors.js';
import {
  checkBatchSize,
  mergeOutcomes,
  operationsOf,
  prepareEntry,
  type BatchEntry,
  type BatchMode,
  type Prepared,
} from '../../ledger/engine/batch.js';
import type { OperationOutcome } from '../../ledger/engine/engine.js';
import type { Allocation } from '../../ledger/types.js';
import { generationOf } from '../etag.js';
import { decide, dryRunOf, type HttpOutcome } from '../mutation.js';
import { endpoint } from '../route.js';
import { problemContentType, problemOf, validationProblem } from '../problems.js';
import {
  AllocationBody,
  BatchAnswer,
  BatchBody,
  ConfirmBody,
  CreateHeaders,
  DryRunQuery,
  HoldBody,
  OrganizationParams,
  problemResponses,
} from '../../schemas/index.js';
import { outcomeOf } from './allocations.js';

// The routes' own body schemas, checked as Fastify checks them (the same Ajv options).
const ajv = new Ajv({ allErrors: true, coerceTypes: false, removeAdditional: false, verbose: true, strict: false });
const bodies = {
  'allocation.create': ajv.compile(AllocationBody),
  'allocation.replace': ajv.compile(AllocationBody),
  'hold.create': ajv.compile(HoldBody),
  'hold.confirm': ajv.compile(ConfirmBody),
} as const;

/** The whole body, checked as Fastify checks it here: for `allot batch`, which reads it from a file. */
export const checkBatchBody = ajv.compile(BatchBody);

export type Entry = (typeof BatchBody)['static']['operations'][number];

/** The status, headers and body each operation's own route would answer. */
function resultOf(request: FastifyRequest, entry: Entry, outcome: OperationOutcome): HttpOutcome | null {
  switch (outcome.status) {
    case 'not-applied':
      return null;
    case 'refused': {
      const { status, body } = problemOf(outcome.error, request.url);
      return { status, headers: { 'content-type': problemContentType }, body };
    }
    case 'applied': {
      if (entry.op === 'allocation.delete') return { status: 204, headers: {}, body: undefined };
      const collection = entry.op.startsWith('hold') ? 'holds' : 'allocations';
      return outcomeOf(collection, entry.op.endsWith('create') ? 201 : 200)(outcome.value as Allocation);
    }
  }
}

/** The batch's answer from every entry's outcome. */
function answerOf(request: FastifyRequest, entries: readonly Entry[], mode: BatchMode, outcomes: readonly OperationOutcome[]): HttpOutcome {
  const results = outcomes.map((outcome, i) => {
    const result = resultOf(request, entries[i]!, outcome);
    if (result === null) return { status: null };
    return {
      status: result.status,
      ...(result.headers.etag ? { etag: result.headers.etag } : {}),
      ...(result.headers.location ? { location: result.headers.location } : {}),
      ...(result.body === undefined ? {} : { body: result.body }),
    };
  });
  const failed = outcomes.findIndex((outcome) => outcome.status === 'refused');
  if (mode === 'atomic' && failed >= 0) {
    const error = (outcomes[failed] as { error: AllotError }).error;
    const { status, body } = problemOf(error, request.url);
    return {
      status,
      headers: { 'content-type': problemContentType },
      body: { ...body, detail: `operation ${failed} (${entries[failed]!.op}): ${error.detail}`, failedOperation: failed, results },
    };
  }
  return { status: 200, headers: {}, body: { mode, results } };
}

export const batches = {
  decide: endpoint({
    bodyLimit: 1024 * 1024,
    preValidation: async (request) => {
      const operations = (request.body as { operations?: unknown } | null)?.operations;
      if (Array.isArray(operations)) checkBatchSize(operations.length);
    },
    schema: {
      summary: 'Decide up to 1,000 allocation and hold operations of one organization at once',
      description:
        'Each operation names its route (`allocation.create`, `allocation.replace`, `allocation.delete`, ' +
        '`hold.create`, `hold.confirm`, `hold.release`), its project, the id for all but creates, an ' +
        'optional `ifMatch` and the route\'s body. It is checked and authorized as that route would be. ' +
        '`independent`: 200 with each result in order (the status, ETag, Location and body or problem its ' +
        'route would answer). `atomic`: all or none; on a refusal nothing is written and the answer is ' +
        "that operation's problem with `failedOperation` and every result (null status: not applied). " +
        'Over 1,000 operations or 1 MiB: 413. One Idempotency-Key covers the batch.',
      params: OrganizationParams,
      querystring: DryRunQuery,
      headers: CreateHeaders,
      body: BatchBody,
      response: { 200: BatchAnswer, ...problemResponses(400, 401, 403, 404, 409, 412, 413, 415, 422) },
    },
    handler: async (request, reply, { ledger }) => {
      const { organization } = request.params;
      const { mode, operations: entries } = request.body;
      checkBatchSize(entries.length);
      await ledger.getOrganization(organization);
      const prepared = entries.map((entry, i) => prepare(request, organization, entry, i, mode));
      const operations = operationsOf(prepared, mode);
      const answer = (decided: readonly OperationOutcome[]) => answerOf(request, entries, mode, mergeOutcomes(prepared, mode, decided));
      if (operations.length === 0) {
        if (dryRunOf(request)) reply.header('allot-dry-run', 'true');
        const outcome = answer([]);
        return reply.code(outcome.status as 200).headers(outcome.headers).send(outcome.body as never);
      }
      return decide(ledger, request, reply, { operations, mode }, answer);
    },
  }),
};

/**
 * One entry as its route would take it: the caller may see its project, its body has the
 * route's shape, its If-Match is an ETag; then it is built (checked) into its operation.
 * Field names are the route's own (`resource.id`), or, refusing an atomic batch whole, the
 * entry's path in the batch (`operations[3].body.resource.id`).
 */
function prepare(request: FastifyRequest, organization: string, entry: Entry, index: number, mode: BatchMode): Prepared {
  const at = (field: string) => (mode === 'atomic' ? `operations[${index}].${field}` : field);
  try {
    if (!canSee(request.principal, { organization, project: entry.project })) {
      throw notFound(`project "${entry.project}" in organization "${organization}"`);
    }
    return prepareOrThrow(organization, entryOf(entry, index, mode, at), mode, index);
  } catch (error) {
    if (error instanceof AllotError) return { error };
    throw error;
  }
}

/**
 * An entry as the library takes it, checked as its route would check it (the id, If-Match and
 * body it takes, the body's schema); a refusal names the field by `at`. Shared with `allot batch`.
 */
export function entryOf(entry: Entry, index: number, mode: BatchMode, at: (field: string) => string): BatchEntry {
  const needsId = !entry.op.endsWith('.create');
  if (needsId && entry.id === undefined) throw fieldError(at('id'), `is required by ${entry.op}`);
  if (!needsId && (entry.id !== undefined || entry.ifMatch !== undefined)) {
    throw fieldError(at(entry.id !== undefined ? 'id' : 'ifMatch'), `is not taken by ${entry.op}`);
  }
  const schema = bodies[entry.op as keyof typeof bodies];
  if (schema === undefined && entry.body !== undefined) throw fieldError(at('body'), `is not taken by ${entry.op}`);
  const body = entry.body ?? (entry.op === 'hold.confirm' ? {} : undefined);
  if (schema !== undefined) {
    if (body === undefined) throw fieldError(at('body'), `is required by ${entry.op}`);
    if (!schema(body)) {
      const refusal = validationProblem({ validation: schema.errors ?? [], validationContext: 'body' } as never);
      throw mode === 'atomic' ? atPath(refusal, `operations[${index}].body`) : refusal;
    }
  }
  const ifGeneration = generationOf(entry.ifMatch, at('ifMatch'));
  return { ...entry, body, ifGeneration } as unknown as BatchEntry;
}

/** Builds the operation; a refusal of its input names the entry's path in an atomic batch. */
function prepareOrThrow(organization: string, entry: BatchEntry, mode: BatchMode, index: number): Prepared {
  const prepared = prepareEntry(organization, entry);
  if ('error' in prepared && mode === 'atomic') return { error: atPath(prepared.error, `operations[${index}].body`) };
  return prepared;
}

/** A refusal of an entry's body, its fields named from the batch (`operations[3].body.…`). */
function atPath(error: AllotError, path: string): AllotError {
  if (error.code !== 'invalid-request') return error;
  const errors = (error.extensions.errors ?? []).map((e) => ({ ...e, field: e.field === 'body' ? path : `${path}.${e.field}` }));
  return new AllotError('invalid-request', errors.map((e) => `${e.field}: ${e.message}`).join('; ') || error.detail, { errors });
}

const fieldError = (field: string, message: string) =>
  new AllotError('invalid-request', `${field}: ${message}`, { errors: [{ field, message }] });
