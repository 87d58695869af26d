/** Holds: quota held for a referenced resource until confirmed, released or expired. */
import { build } from '../../ledger/engine/build.js';
import { ifMatchOf } from '../etag.js';
import { decision, numberOrUndefined, read } from '../route.js';
import {
  DryRunQuery,
  ConfirmBody,
  Hold as HoldSchema,
  HoldBody,
  CreateHeaders,
  MutationHeaders,
  pageOf,
  PageQuery,
  problemResponses,
  ProjectParams,
  SubResourceParams,
} from '../../schemas/index.js';
import { outcomeOf } from './allocations.js';

export const holds = {
  create: decision(
    {
      summary: 'Hold quota for a referenced resource until confirmed, released or expired',
      description:
        'A hold counts as used (held) at once, checked against the quotas like an allocation. ' +
        'It resolves exactly once: confirm, release, or expiry after ttlSeconds (1 s to 7 days).',
      params: ProjectParams,
      querystring: DryRunQuery,
      headers: CreateHeaders,
      body: HoldBody,
      response: { 201: HoldSchema, ...problemResponses(400, 401, 404, 409, 413, 415, 422) },
    },
    ({ params, body }) => build.createHold(params.organization, params.project, body),
    outcomeOf('holds', 201),
    { answers: { etag: true, location: true } },
  ),

  list: read(
    {
      summary: "List a project's pending holds",
      description:
        'Pending only: confirmed, released and expired holds are read one at a time by id.',
      params: ProjectParams,
      querystring: PageQuery,
      response: { 200: pageOf(HoldSchema), ...problemResponses(400, 401, 404) },
    },
    ({ params, query }, { ledger }) =>
      ledger.listHolds(params.organization, params.project, { limit: numberOrUndefined(query.limit), cursor: query.cursor }),
  ),

  get: read(
    {
      summary: 'Read a hold, whatever its status',
      description:
        'pending, confirmed (now also an allocation with the same id), released or expired; its ETag is its generation.',
      params: SubResourceParams,
      response: { 200: HoldSchema, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getHold(params.organization, params.project, params.id),
    { etag: true },
  ),

  confirm: decision(
    {
      summary: 'Confirm a hold as an allocation with the same id',
      description:
        'Confirms all that is held, or the listed amounts (never more than held per kind; the ' +
        'rest is freed). 409 hold-already-resolved if it was confirmed, released or expired.',
      params: SubResourceParams,
      querystring: DryRunQuery,
      headers: MutationHeaders,
      body: ConfirmBody,
      response: { 200: HoldSchema, ...problemResponses(400, 401, 404, 409, 412, 422) },
    },
    (request) => {
      const { organization, project, id } = request.params;
      return build.confirmHold(organization, project, id, request.body, ifMatchOf(request));
    },
    outcomeOf('holds', 200),
    {
      answers: { etag: true },
      bodyOptional: true,
      // The body is optional (confirm all that is held): validate an absent one as {}.
      // Only an absent one: a JSON `null` is a malformed body and must get a 400.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
  ),

  release: decision(
    {
      summary: 'Release a hold, freeing all it holds',
      description:
        '409 hold-already-resolved if it was confirmed, released or expired. With If-Match, refused with 412 if the hold changed since that ETag.',
      params: SubResourceParams,
      querystring: DryRunQuery,
      headers: MutationHeaders,
      response: { 200: HoldSchema, ...problemResponses(400, 401, 404, 409, 412, 422) },
    },
    (request) => {
      const { organization, project, id } = request.params;
      return build.releaseHold(organization, project, id, ifMatchOf(request));
    },
    outcomeOf('holds', 200),
    { answers: { etag: true } },
  ),
};
