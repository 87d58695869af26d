/** Resource kinds, organizations and projects. */
import { pageOfSetsMax, pageSizeDefault } from '../../domain/constants.js';
import { AllotError, invalid } from '../../domain/errors.js';
import type { Organization as OrganizationRecord, Page } from '../../ledger/types.js';
import { build } from '../../ledger/engine/build.js';
import { decision, deleted, endpoint, numberOrUndefined, read } from '../route.js';
import {
  CascadeQuery,
  Kind,
  KindBody,
  KindParams,
  listOf,
  CreateHeaders,
  Organization,
  OrganizationListQuery,
  OrganizationParams,
  OrganizationWithQuotas,
  pageOf,
  PageQuery,
  problemResponses,
  Project,
  ProjectParams,
  TenantBody,
} from '../../schemas/index.js';

export const kinds = {
  put: endpoint({
    schema: {
      summary: 'Create or update a resource kind',
      description:
        "201 when created, 200 when updated. The default applies to organizations without their own quota; lowering it below an organization's usage leaves that kind over limit there, and below what projects' guarantees keep back is refused (409 guarantees-exceed-quota).",
      params: KindParams,
      body: KindBody,
      response: { 200: Kind, 201: Kind, ...problemResponses(400, 401, 409) },
    },
    handler: async (request, reply, { ledger }) => {
      const { kind, created } = await ledger.putKind(request.params.kind, request.body);
      return reply.code(created ? 201 : 200).send(kind);
    },
  }),

  list: read(
    {
      summary: 'List resource kinds',
      description: 'Every kind, by name, with its display name, description, default quota (null: unlimited) and format.',
      response: { 200: listOf(Kind), ...problemResponses(401) },
    },
    async (_request, { ledger }) => ({ items: await ledger.listKinds() }),
  ),

  get: read(
    {
      summary: 'Read a resource kind',
      description:
        '404 if no kind has this name.',
      params: KindParams,
      response: { 200: Kind, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getKind(params.kind),
  ),
};

export const organizations = {
  list: read(
    {
      summary: 'List organizations, optionally with their quotas and usage',
      description:
        'By id, a page at a time (`limit`, `cursor`); `prefix` keeps ids that start with it. A principal scoped to one organization sees that one only.',
      querystring: OrganizationListQuery,
      response: { 200: pageOf(OrganizationWithQuotas), ...problemResponses(400, 401) },
    },
    async (request, { ledger }) => {
      const { limit, cursor, prefix, include } = request.query;
      if (include === 'quotas' && Number(limit ?? pageSizeDefault) > pageOfSetsMax) {
        throw invalid('limit', `must be at most ${pageOfSetsMax} with include=quotas`);
      }
      // A principal scoped to one organization sees that one only.
      const own = request.principal.organization;
      let page: Page<OrganizationRecord>;
      if (own !== null) {
        const organization = await ledger.getOrganization(own).catch((error: unknown) => {
          if (error instanceof AllotError && error.code === 'not-found') return undefined;
          throw error;
        });
        const listed = organization !== undefined && cursor === undefined && own.startsWith(prefix ?? '');
        page = { items: listed ? [organization] : [], nextCursor: null };
      } else {
        page = await ledger.listOrganizations({ limit: numberOrUndefined(limit), cursor, prefix });
      }
      if (include !== 'quotas') return page;
      const sets = await ledger.getQuotaSets(page.items.map((organization) => organization.id));
      return { ...page, items: page.items.map((organization, index) => ({ ...organization, quotas: sets[index]!.quotas })) };
    },
  ),

  put: endpoint({
    schema: {
      summary: 'Create or update an organization',
      description:
        '201 when created, 200 when updated (its display name). Service-admins only.',
      params: OrganizationParams,
      body: TenantBody,
      response: { 200: Organization, 201: Organization, ...problemResponses(400, 401) },
    },
    handler: async (request, reply, { ledger }) => {
      const { organization, created } = await ledger.putOrganization(request.params.organization, request.body);
      return reply.code(created ? 201 : 200).send(organization);
    },
  }),

  get: read(
    {
      summary: 'Read an organization',
      description:
        '404 if it does not exist or the caller may not see it.',
      params: OrganizationParams,
      response: { 200: Organization, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getOrganization(params.organization),
  ),
};

export const projects = {
  list: read(
    {
      summary: "List an organization's projects",
      description:
        'By id, a page at a time (`limit`, `cursor`). Not for a project-member (403).',
      params: OrganizationParams,
      querystring: PageQuery,
      response: { 200: pageOf(Project), ...problemResponses(400, 401, 404) },
    },
    ({ params, query }, { ledger }) =>
      ledger.listProjects(params.organization, { limit: numberOrUndefined(query.limit), cursor: query.cursor }),
  ),

  put: endpoint({
    schema: {
      summary: 'Create or update a project',
      description:
        '201 when created, 200 when updated. An id freed by a deletion may be used again for a new, empty project.',
      params: ProjectParams,
      body: TenantBody,
      response: { 200: Project, 201: Project, ...problemResponses(400, 401, 404) },
    },
    handler: async (request, reply, { ledger }) => {
      const { organization, project } = request.params;
      const result = await ledger.putProject(organization, project, request.body);
      return reply.code(result.created ? 201 : 200).send(result.project);
    },
  }),

  delete: decision(
    {
      summary: 'Delete a project',
      description:
        'Refused with 409 project-not-empty while the project has live allocations or pending ' +
        'holds, unless cascade=true, which deletes every allocation and releases every hold ' +
        '(each journaled, with `cascade: true`). Its caps and guarantees go with it (the ' +
        'guarantees are freed for the other projects) and its project-member tokens are revoked. ' +
        'The id may be used again later for a new, empty project.',
      params: ProjectParams,
      querystring: CascadeQuery,
      headers: CreateHeaders,
      response: { 204: { type: 'null', description: 'Deleted' }, ...problemResponses(400, 401, 404, 409, 422) },
    },
    ({ params, query }) => build.deleteProject(params.organization, params.project, query.cascade === 'true'),
    deleted,
  ),

  get: read(
    {
      summary: 'Read a project',
      description:
        '404 if it does not exist or the caller may not see it.',
      params: ProjectParams,
      response: { 200: Project, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getProject(params.organization, params.project),
  ),
};
