import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Ledger } from '../../ledger/ledger.js';
import type { Allocation } from '../../ledger/types.js';
import { etagOf, ifMatchOf } from '../etag.js';
import { build } from '../../ledger/engine/build.js';
import { decideOne } from '../mutation.js';
import {
  DryRunQuery,
  Allocation as AllocationSchema,
  AllocationBody,
  AllocationParams,
  AllocationQuery,
  CreateHeaders,
  MutationHeaders,
  OrganizationAllocationQuery,
  OrganizationParams,
  pageOf,
  problemResponses,
  ProjectParams,
} from '../schemas.js';
import { numberOrUndefined } from './catalog.js';

export const collectionPath = (organization: string, project: string, collection: string) =>
  `/v1/organizations/${organization}/projects/${project}/${collection}`;

/**
 * The answer of a write to an allocation or a hold: its ETag, and for a create (201) the
 * Location of the new resource in `collection`.
 */
export const outcomeOf =
  (collection: 'allocations' | 'holds', status: number) =>
  (written: Allocation) => ({
    status,
    headers: {
      etag: etagOf(written.generation),
      ...(status === 201
        ? { location: `${collectionPath(written.organization, written.project, collection)}/${written.id}` }
        : {}),
    },
    body: written,
  });

const allocationOutcome = (status: number) => outcomeOf('allocations', status);

export const allocationRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (
  app,
  { ledger },
) => {
  const collection = '/v1/organizations/:organization/projects/:project/allocations';

  app.post(collection, {
    config: { action: 'allocate' },
    schema: {
      tags: ['allocations'],
      summary: 'Allocate quota to a referenced resource',
      description:
        'Checked against the quotas in the same transaction. 409 quota-exceeded names every ' +
        'kind that would go over; 409 duplicate-allocation names the live allocation or hold ' +
        'of the same referenced resource.',
      params: ProjectParams,
      querystring: DryRunQuery,
      headers: CreateHeaders,
      body: AllocationBody,
      response: { 201: AllocationSchema, ...problemResponses(400, 401, 404, 409, 413, 415, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project } = request.params;
      return decideOne(ledger, request, reply, build.createAllocation(organization, project, request.body), allocationOutcome(201));
    },
  });

  app.get(collection, {
    config: { action: 'read' },
    schema: {
      tags: ['allocations'],
      summary: "List a project's live allocations",
      params: ProjectParams,
      querystring: AllocationQuery,
      response: { 200: pageOf(AllocationSchema), ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => {
      const { organization, project } = request.params;
      const { limit, ...filter } = request.query;
      return ledger.listAllocations(organization, project, { ...filter, limit: numberOrUndefined(limit) });
    },
  });

  app.get('/v1/organizations/:organization/allocations', {
    config: { action: 'read-organization' },
    schema: {
      tags: ['allocations'],
      summary: "List an organization's live allocations, across its projects",
      description: 'Ordered by project, then id. Filter by project and by the referenced resource.',
      params: OrganizationParams,
      querystring: OrganizationAllocationQuery,
      response: { 200: pageOf(AllocationSchema), ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const { limit, ...filter } = request.query;
      return ledger.listOrganizationAllocations(request.params.organization, {
        ...filter,
        limit: numberOrUndefined(limit),
      });
    },
  });

  app.get(`${collection}/:id`, {
    config: { action: 'read' },
    schema: {
      tags: ['allocations'],
      summary: 'Read an allocation',
      params: AllocationParams,
      response: { 200: AllocationSchema, ...problemResponses(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const { organization, project, id } = request.params;
      const allocation = await ledger.getAllocation(organization, project, id);
      return reply.header('etag', etagOf(allocation.generation)).send(allocation);
    },
  });

  app.put(`${collection}/:id`, {
    config: { action: 'allocate' },
    schema: {
      tags: ['allocations'],
      summary: 'Replace an allocation',
      description:
        'Only the difference to the current allocation is checked against the quotas. With ' +
        'If-Match, refused with 412 if the allocation changed since that ETag.',
      params: AllocationParams,
      querystring: DryRunQuery,
      headers: MutationHeaders,
      body: AllocationBody,
      response: { 200: AllocationSchema, ...problemResponses(400, 401, 404, 409, 412, 413, 415, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project, id } = request.params;
      const ifGeneration = ifMatchOf(request);
      return decideOne(
        ledger,
        request,
        reply,
        build.replaceAllocation(organization, project, id, request.body, ifGeneration),
        allocationOutcome(200),
      );
    },
  });

  app.delete(`${collection}/:id`, {
    config: { action: 'allocate' },
    schema: {
      tags: ['allocations'],
      summary: 'Delete an allocation and free what it used',
      description:
        'Deleting an allocation that is already deleted answers 204 again. With If-Match, ' +
        'refused with 412 if the allocation changed since that ETag.',
      params: AllocationParams,
      querystring: DryRunQuery,
      headers: MutationHeaders,
      response: { 204: { type: 'null', description: 'Deleted' }, ...problemResponses(400, 401, 404, 412, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project, id } = request.params;
      const ifGeneration = ifMatchOf(request);
      return decideOne(ledger, request, reply, build.deleteAllocation(organization, project, id, ifGeneration), () => ({
        status: 204,
        headers: {},
        body: undefined,
      }));
    },
  });
};
