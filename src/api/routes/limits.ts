/** Limits: per project, service, resource type and region; configured, active, usage. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { notFound } from '../../domain/errors.js';
import type { Ledger } from '../../ledger/ledger.js';
import { respond } from '../mutation.js';
import { numberOrUndefined } from './catalog.js';
import {
  LimitBody,
  LimitParams,
  LimitRegionParams,
  LimitUsageBody,
  CreateHeaders,
  OrganizationLimitQuery,
  OrganizationParams,
  pageOf,
  problemResponses,
  ProjectLimit,
  ProjectLimitRegion,
  ProjectParams,
} from '../schemas.js';

const base = '/v1/organizations/:organization/projects/:project/limits';

export const limitRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (app, { ledger }) => {
  app.get('/v1/organizations/:organization/limits', {
    config: { action: 'read-organization' },
    schema: {
      tags: ['limits'],
      summary: "List an organization's limits, a page of projects at a time",
      description: "Every limit of a project is on the same page; `limit` counts projects.",
      params: OrganizationParams,
      querystring: OrganizationLimitQuery,
      response: { 200: pageOf(ProjectLimit), ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const { limit, ...filter } = request.query;
      return ledger.listOrganizationLimits(request.params.organization, { ...filter, limit: numberOrUndefined(limit) });
    },
  });

  app.get(base, {
    config: { action: 'read' },
    schema: {
      tags: ['limits'],
      summary: "List a project's limits, per service, resource type and region",
      params: ProjectParams,
      response: { 200: Type.Object({ items: Type.Array(ProjectLimit) }), ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => ({
      items: await ledger.listLimits(request.params.organization, request.params.project),
    }),
  });

  app.get(`${base}/:service/:resourceType`, {
    config: { action: 'read' },
    schema: {
      tags: ['limits'],
      summary: 'Read one limit in every region: configured, active (never below usage), usage',
      params: LimitParams,
      response: { 200: ProjectLimit, ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => {
      const { organization, project, service, resourceType } = request.params;
      return ledger.getLimit(organization, project, service, resourceType);
    },
  });

  app.put(`${base}/:service/:resourceType`, {
    config: { action: 'administer' },
    schema: {
      tags: ['limits'],
      summary: 'Set the configured limit per region',
      description:
        'Regions not listed lose their limit. A region keeps the usage it reported, so its ' +
        'activeLimit is max(configuredLimit, usage): a limit lowered below usage shows a gap ' +
        'until usage falls.',
      params: LimitParams,
      headers: CreateHeaders,
      body: LimitBody,
      response: { 200: ProjectLimit, ...problemResponses(400, 401, 404, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project, service, resourceType } = request.params;
      return respond(
        ledger,
        request,
        reply,
        (options) =>
          ledger.setLimit(organization, project, service, resourceType, request.body.regions, {
            ...options,
            global: request.body.global,
          }),
        (limit) => ({ status: 200, headers: {}, body: limit }),
      );
    },
  });

  app.delete(`${base}/:service/:resourceType`, {
    config: { action: 'administer' },
    schema: {
      tags: ['limits'],
      summary: 'Remove a limit in every region',
      params: LimitParams,
      headers: CreateHeaders,
      response: { 204: { type: 'null', description: 'Removed' }, ...problemResponses(400, 401, 404, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project, service, resourceType } = request.params;
      return respond(
        ledger,
        request,
        reply,
        async (options) => {
          const { deleted } = await ledger.deleteLimit(organization, project, service, resourceType, options);
          if (!deleted) throw notFound(`limit ${service}/${resourceType} of project "${project}"`);
          return deleted;
        },
        () => ({ status: 204, headers: {}, body: undefined }),
      );
    },
  });

  app.put(`${base}/:service/:resourceType/regions/:region/usage`, {
    config: { action: 'report-usage' },
    schema: {
      tags: ['limits'],
      summary: "Report a region's usage of a limit (from its host service's tracker)",
      params: LimitRegionParams,
      headers: CreateHeaders,
      body: LimitUsageBody,
      response: { 200: ProjectLimitRegion, ...problemResponses(400, 401, 404, 422) },
    },
    handler: async (request, reply) => {
      const { organization, project, service, resourceType, region } = request.params;
      return respond(
        ledger,
        request,
        reply,
        (options) =>
          ledger.reportLimitUsage(organization, project, service, resourceType, region, request.body.usage, options),
        (entry) => ({ status: 200, headers: {}, body: entry }),
      );
    },
  });
};
