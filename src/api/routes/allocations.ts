/** Allocations: a project's quota, tied to the referenced resource that uses it. */
import type { Allocation } from '../../ledger/types.js';
import { build } from '../../ledger/engine/build.js';
import { etagOf, ifMatchOf } from '../etag.js';
import { decision, deleted, numberOrUndefined, read } from '../route.js';
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
} from '../../schemas/index.js';

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

export const allocations = {
  create: decision(
    {
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
    ({ params, body }) => build.createAllocation(params.organization, params.project, body),
    outcomeOf('allocations', 201),
    { answers: { etag: true, location: true } },
  ),

  list: read(
    {
      summary: "List a project's live allocations",
      description:
        'By id, a page at a time; filter by the referenced resource (`resourceKind`, `resourceId`).',
      params: ProjectParams,
      querystring: AllocationQuery,
      response: { 200: pageOf(AllocationSchema), ...problemResponses(400, 401, 404) },
    },
    ({ params, query }, { ledger }) => {
      const { limit, ...filter } = query;
      return ledger.listAllocations(params.organization, params.project, { ...filter, limit: numberOrUndefined(limit) });
    },
  ),

  listOfOrganization: read(
    {
      summary: "List an organization's live allocations, across its projects",
      description: 'Ordered by project, then id. Filter by project and by the referenced resource.',
      params: OrganizationParams,
      querystring: OrganizationAllocationQuery,
      response: { 200: pageOf(AllocationSchema), ...problemResponses(400, 401, 403, 404) },
    },
    ({ params, query }, { ledger }) => {
      const { limit, ...filter } = query;
      return ledger.listOrganizationAllocations(params.organization, { ...filter, limit: numberOrUndefined(limit) });
    },
  ),

  get: read(
    {
      summary: 'Read an allocation',
      description:
        'Its ETag is its generation: send it in If-Match to change it only if no one else has.',
      params: AllocationParams,
      response: { 200: AllocationSchema, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getAllocation(params.organization, params.project, params.id),
    { etag: true },
  ),

  replace: decision(
    {
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
    (request) => {
      const { organization, project, id } = request.params;
      return build.replaceAllocation(organization, project, id, request.body, ifMatchOf(request));
    },
    outcomeOf('allocations', 200),
    { answers: { etag: true } },
  ),

  delete: decision(
    {
      summary: 'Delete an allocation and free what it used',
      description:
        'Deleting an allocation that is already deleted answers 204 again. With If-Match, ' +
        'refused with 412 if the allocation changed since that ETag.',
      params: AllocationParams,
      querystring: DryRunQuery,
      headers: MutationHeaders,
      response: { 204: { type: 'null', description: 'Deleted' }, ...problemResponses(400, 401, 404, 412, 422) },
    },
    (request) => {
      const { organization, project, id } = request.params;
      return build.deleteAllocation(organization, project, id, ifMatchOf(request));
    },
    deleted,
  ),
};
