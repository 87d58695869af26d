import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Ledger } from '../../ledger/ledger.js';
import { etagOf, ifMatchOf } from '../etag.js';
import { build } from '../../ledger/engine/build.js';
import { decideOne } from '../mutation.js';
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
} from '../schemas.js';
import { outcomeOf } from './allocations.js';
import { numberOrUndefined } from './catalog.js';

const holdOutcome = (status: number) => outcomeOf('holds', status);

export const holdRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (app, { ledger }) => {
  const collection = '/v1/organizations/:organization/projects/:project/holds';

  app.post(collection, {
    config: { action: 'allocate' },
    schema: {
      tags: ['holds'],
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
    handler: async (request, reply) => {
      const { organization, project } = request.params;
      return decideOne(ledger, request, reply, build.createHold(organization, project, request.body), holdOutcome(201));
    },
  });

  app.get(collection, {
    config: { action: 'read' },
    schema: {
      tags: ['holds'],
      summary: "List a project's pending holds",
      params: ProjectParams,
      querystring: PageQuery,
      response: { 200: pageOf(HoldSchema), ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => {
      const { organization, project } = request.params;
      return ledger.listHolds(organization, project, {
        limit: numberOrUndefined(request.query.limit),
        cursor: request.query.cursor,
      });
    },
  });

  app.get(`${collection}/:id`, {
    config: { action: 'read' },
    schema: {
      tags: ['holds'],
      summary: 'Read a hold, whatever its status',
      params: SubResourceParams,
      response: { 200: HoldSchema, ...problemResponses(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const { organization, project, id } = request.params;
      const hold = await ledger.getHold(organization, project, id);
      return reply.header('etag', etagOf(hold.generation)).send(hold);
    },
  });

  app.post(`${collection}/:id/confirm`, {
    config: { action: 'allocate' },
    schema: {
      tags: ['holds'],
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
    // The body is optional (confirm all that is held): validate an absent one as {}.
    // Only an absent one: a JSON `null` is a malformed body and must get a 400.
    preValidation: async (request) => {
      if (request.body === undefined) request.body = {};
    },
    handler: async (request, reply) => {
      const { organization, project, id } = request.params;
      const ifGeneration = ifMatchOf(request);
      return decideOne(
        ledger,
        request,
        reply,
        build.confirmHold(organization, project, id, request.body, ifGeneration),
        holdOutcome(200),
      );
    },
  });

  app.post(`${collection}/:id/release`, {
    config: { action: 'allocate' },
    schema: {
      tags: ['holds'],
      summary: 'Release a hold, freeing all it holds',
      params: SubResourceParams,
      querystring: DryRunQuery,
      headers: MutationHeaders,
      response: { 200: HoldSchema, ...problemResponses(400, 401, 404, 409, 412, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project, id } = request.params;
      const ifGeneration = ifMatchOf(request);
      return decideOne(ledger, request, reply, build.releaseHold(organization, project, id, ifGeneration), holdOutcome(200));
    },
  });
};
