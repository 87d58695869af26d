/** Regions, the host services registered in them, and each project's regions. */
import { Type } from '@sinclair/typebox';
import { notFound } from '../../domain/errors.js';
import { endpoint, ok, read, write } from '../route.js';
import {
  CreateHeaders,
  HostBody,
  HostParams,
  problemResponses,
  ProjectParams,
  ProjectRegions,
  ProjectRegionsBody,
  Region,
  RegionHost,
  RegionParams,
  TenantBody,
} from '../../schemas/index.js';

// Service-admins only (the table's actions): hosts' endpoints are the platform's internals.
export const regions = {
  list: read(
    {
      summary: 'List regions and the host services registered in each, with whether the controller reaches them',
      description:
        "Service-admins only: hosts' endpoints are the platform's internals (their tokens are never shown).",
      response: { 200: Type.Object({ items: Type.Array(Region) }), ...problemResponses(400, 401) },
    },
    async (_request, { ledger }) => ({ items: await ledger.listRegions() }),
  ),

  get: read(
    {
      summary: 'Read a region',
      description: 'With its hosts and whether the controller reaches them. 404 if unknown.',
      params: RegionParams,
      response: { 200: Region, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getRegion(params.region),
  ),

  put: endpoint({
    schema: {
      summary: 'Create or update a region',
      description:
        '201 when created, 200 when updated (its display name).',
      params: RegionParams,
      body: TenantBody,
      response: { 200: Region, 201: Region, ...problemResponses(400, 401) },
    },
    handler: async (request, reply, { ledger }) => {
      const result = await ledger.putRegion(request.params.region, request.body);
      return reply.code(result.created ? 201 : 200).send(result.region);
    },
  }),

  putHost: read(
    {
      summary: "Register how the controller reaches a host service's trackers in a region",
      description:
        "The endpoint of the host's limits admin routes and the bearer token they accept; the token is never shown again.",
      params: HostParams,
      body: HostBody,
      response: { 200: RegionHost, ...problemResponses(400, 401, 404) },
    },
    ({ params, body }, { ledger }) => ledger.putRegionHost(params.region, params.service, body),
  ),

  deleteHost: endpoint({
    schema: {
      summary: 'Remove a host service from a region',
      description:
        'The controller stops reaching it. 404 if it was not registered.',
      params: HostParams,
      response: { 204: { type: 'null', description: 'Removed' }, ...problemResponses(400, 401, 404) },
    },
    handler: async (request, reply, { ledger }) => {
      const { deleted } = await ledger.deleteRegionHost(request.params.region, request.params.service);
      if (!deleted) throw notFound(`host service "${request.params.service}" in region "${request.params.region}"`);
      return reply.code(204).send();
    },
  }),

  ofProject: read(
    {
      summary: "A project's primary region and the regions it is enabled in",
      description:
        "The primary region's controller manages the project's trackers; null and empty until set.",
      params: ProjectParams,
      response: { 200: ProjectRegions, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getProjectRegions(params.organization, params.project),
  ),

  setOfProject: write(
    {
      summary: "Set a project's primary region (whose controller manages its trackers) and enabled regions",
      description:
        'Regions must exist; the primary must be among the enabled ones. In a region taken out, the ' +
        "project's limits are kept but shown disabled, and the controller deletes their trackers; enabling it " +
        'again brings them back. ' +
        'With Idempotency-Key, a retry gets the first answer.',
      params: ProjectParams,
      headers: CreateHeaders,
      body: ProjectRegionsBody,
      response: { 200: ProjectRegions, ...problemResponses(400, 401, 404, 422) },
    },
    ({ params, body }, options, { ledger }) => ledger.setProjectRegions(params.organization, params.project, body, options),
    ok,
  ),
};
