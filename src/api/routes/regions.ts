/** Regions, the host services registered in them, and each project's regions. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { notFound } from '../../domain/errors.js';
import type { Ledger } from '../../ledger/ledger.js';
import { respond } from '../mutation.js';
import { CreateHeaders, Id, problemResponses, ProjectParams, TenantBody } from '../schemas.js';

const strict = { additionalProperties: false };
const RegionParams = Type.Object({ region: Id }, strict);
const HostParams = Type.Object({ region: Id, service: Id }, strict);

const RegionHost = Type.Object({
  region: Type.String(),
  service: Type.String(),
  endpoint: Type.String(),
  status: Type.Union([Type.Literal('ok'), Type.Literal('stale'), Type.Literal('unknown')], {
    description: 'ok: the controller reached it lately; stale: failing or not reached for 30 s; unknown: never tried',
  }),
  lastOkAt: Type.Union([Type.String(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  lastErrorAt: Type.Union([Type.String(), Type.Null()]),
});
const Region = Type.Object({
  name: Type.String(),
  displayName: Type.String(),
  hosts: Type.Array(RegionHost),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
const HostBody = Type.Object(
  {
    endpoint: Type.String({ maxLength: 2048, description: "Base URL of the host service's limits admin routes (…/admin/… below it)" }),
    token: Type.String({ minLength: 1, maxLength: 4096, description: 'The bearer token those routes accept; never shown again' }),
  },
  strict,
);
const ProjectRegions = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  primary: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Array(Type.String()),
});
const ProjectRegionsBody = Type.Object(
  { primary: Id, enabled: Type.Array(Id, { minItems: 1, maxItems: 64 }) },
  strict,
);

export const regionRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (app, { ledger }) => {
  // Service-admins only: hosts' endpoints are the platform's internals.
  app.get('/v1/regions', {
    config: { action: 'administer' },
    schema: {
      tags: ['regions'],
      summary: 'List regions and the host services registered in each, with whether the controller reaches them',
      response: { 200: Type.Object({ items: Type.Array(Region) }), ...problemResponses(400, 401) },
    },
    handler: async () => ({ items: await ledger.listRegions() }),
  });

  app.get('/v1/regions/:region', {
    config: { action: 'administer' },
    schema: { tags: ['regions'], summary: 'Read a region', params: RegionParams, response: { 200: Region, ...problemResponses(400, 401, 404) } },
    handler: async (request) => ledger.getRegion(request.params.region),
  });

  app.put('/v1/regions/:region', {
    config: { action: 'administer' },
    schema: {
      tags: ['regions'],
      summary: 'Create or update a region',
      params: RegionParams,
      body: TenantBody,
      response: { 200: Region, 201: Region, ...problemResponses(400, 401) },
    },
    handler: async (request, reply) => {
      const result = await ledger.putRegion(request.params.region, request.body);
      return reply.code(result.created ? 201 : 200).send(result.region);
    },
  });

  app.put('/v1/regions/:region/hosts/:service', {
    config: { action: 'administer' },
    schema: {
      tags: ['regions'],
      summary: "Register how the controller reaches a host service's trackers in a region",
      params: HostParams,
      body: HostBody,
      response: { 200: RegionHost, ...problemResponses(400, 401, 404) },
    },
    handler: async (request) =>
      ledger.putRegionHost(request.params.region, request.params.service, request.body),
  });

  app.delete('/v1/regions/:region/hosts/:service', {
    config: { action: 'administer' },
    schema: {
      tags: ['regions'],
      summary: 'Remove a host service from a region',
      params: HostParams,
      response: { 204: { type: 'null', description: 'Removed' }, ...problemResponses(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const { deleted } = await ledger.deleteRegionHost(request.params.region, request.params.service);
      if (!deleted) throw notFound(`host service "${request.params.service}" in region "${request.params.region}"`);
      return reply.code(204).send();
    },
  });

  app.get('/v1/organizations/:organization/projects/:project/regions', {
    config: { action: 'read' },
    schema: {
      tags: ['regions'],
      summary: "A project's primary region and the regions it is enabled in",
      params: ProjectParams,
      response: { 200: ProjectRegions, ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => ledger.getProjectRegions(request.params.organization, request.params.project),
  });

  app.put('/v1/organizations/:organization/projects/:project/regions', {
    config: { action: 'create-project' },
    schema: {
      tags: ['regions'],
      summary: "Set a project's primary region (whose controller manages its trackers) and enabled regions",
      params: ProjectParams,
      headers: CreateHeaders,
      body: ProjectRegionsBody,
      response: { 200: ProjectRegions, ...problemResponses(400, 401, 404, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project } = request.params;
      return respond(
        ledger,
        request,
        reply,
        (options) => ledger.setProjectRegions(organization, project, request.body, options),
        (regions) => ({ status: 200, headers: {}, body: regions }),
      );
    },
  });
};
