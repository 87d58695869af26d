/** Limits: per project, service, resource type and region; configured, active, usage. */
import { Type } from '@sinclair/typebox';
import { notFound } from '../../domain/errors.js';
import { deleted, numberOrUndefined, ok, read, write } from '../route.js';
import {
  CreateHeaders,
  LimitBody,
  LimitParams,
  LimitRegionParams,
  LimitUsageBody,
  OrganizationLimitQuery,
  OrganizationParams,
  pageOf,
  problemResponses,
  ProjectLimit,
  ProjectLimitRegion,
  ProjectParams,
} from '../../schemas/index.js';

export const limits = {
  listOfOrganization: read(
    {
      summary: "List an organization's limits, a page of projects at a time",
      description: 'Every limit of a project is on the same page; `limit` counts projects.',
      params: OrganizationParams,
      querystring: OrganizationLimitQuery,
      response: { 200: pageOf(ProjectLimit), ...problemResponses(400, 401, 403, 404) },
    },
    ({ params, query }, { ledger }) => {
      const { limit, ...filter } = query;
      return ledger.listOrganizationLimits(params.organization, { ...filter, limit: numberOrUndefined(limit) });
    },
  ),

  list: read(
    {
      summary: "List a project's limits, per service, resource type and region",
      description:
        "Every limit of the project, each with its regions' configured and active limits and usage.",
      params: ProjectParams,
      response: { 200: Type.Object({ items: Type.Array(ProjectLimit) }), ...problemResponses(400, 401, 404) },
    },
    async ({ params }, { ledger }) => ({ items: await ledger.listLimits(params.organization, params.project) }),
  ),

  get: read(
    {
      summary: 'Read one limit in every region: configured, active (never below usage), usage',
      description:
        '404 if the project has no limit of this service and resource type.',
      params: LimitParams,
      response: { 200: ProjectLimit, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getLimit(params.organization, params.project, params.service, params.resourceType),
  ),

  set: write(
    {
      summary: 'Set the configured limit per region',
      description:
        'Regions not listed lose their limit. A region keeps the usage it reported, so its ' +
        'activeLimit is max(configuredLimit, usage): a limit lowered below usage shows a gap ' +
        'until usage falls, while the host enforces the configured limit (creates refused, deletes ' +
        "accepted). A limit in a region the project's enabled regions leave out is kept and shown " +
        "with hostStatus disabled: no tracker enforces it until the region is enabled again.",
      params: LimitParams,
      headers: CreateHeaders,
      body: LimitBody,
      response: { 200: ProjectLimit, ...problemResponses(400, 401, 404, 422) },
    },
    ({ params, body }, options, { ledger }) =>
      ledger.setLimit(params.organization, params.project, params.service, params.resourceType, body.regions, {
        ...options,
        global: body.global,
      }),
    ok,
  ),

  delete: write(
    {
      summary: 'Remove a limit in every region',
      description:
        "The primary region's controller deletes the regions' trackers at its next pass; their hosts then refuse creates of the type. 404 if there was none.",
      params: LimitParams,
      headers: CreateHeaders,
      response: { 204: { type: 'null', description: 'Removed' }, ...problemResponses(400, 401, 404, 422) },
    },
    async ({ params }, options, { ledger }) => {
      const { organization, project, service, resourceType } = params;
      const { deleted: found } = await ledger.deleteLimit(organization, project, service, resourceType, options);
      if (!found) throw notFound(`limit ${service}/${resourceType} of project "${project}"`);
      return found;
    },
    deleted,
  ),

  reportUsage: write(
    {
      summary: "Report a region's usage of a limit (from its host service's tracker)",
      description:
        "Service-admins only (the controller writes usage through the ledger): the region's usage as its host counts it. " +
          'The active limit shown becomes max(configured, usage); what the host enforces does not change.',
      params: LimitRegionParams,
      headers: CreateHeaders,
      body: LimitUsageBody,
      response: { 200: ProjectLimitRegion, ...problemResponses(400, 401, 404, 422) },
    },
    ({ params, body }, options, { ledger }) => {
      const { organization, project, service, resourceType, region } = params;
      return ledger.reportLimitUsage(organization, project, service, resourceType, region, body.usage, options);
    },
    ok,
  ),
};
