/**
 * Quota requests. Who may do what depends on the request's scope, beyond the route's action:
 * an organization's quota is asked for by its org-admins and granted by service-admins; a
 * project's cap or guarantee is asked for by its members and granted by org-admins (within
 * the organization's quota). A project-member sees only its own project's requests.
 */
import type { FastifyRequest } from 'fastify';
import { canDo, type Principal } from '../../domain/access.js';
import { AllotError, notFound } from '../../domain/errors.js';
import type { Ledger } from '../../ledger/ledger.js';
import type { QuotaRequest } from '../../ledger/requests/requests.js';
import { endpoint, read, write } from '../route.js';
import {
  ApproveBody,
  CreateHeaders,
  DenyBody,
  KindParams,
  OrganizationParams,
  pageOf,
  problemResponses,
  QuotaRequest as QuotaRequestSchema,
  QuotaRequestBody,
  QuotaRequestParams,
  QuotaRequestQuery,
  QuotaRequestWait,
  RequestPolicy,
  RequestForceQuery,
  RequestPolicyBody,
} from '../../schemas/index.js';

const waitMsMax = 60_000;

/** May `principal` grant (approve, deny) a request of this scope? */
const mayGrant = (principal: Principal, scope: 'organization' | 'project') => canDo(principal, scope === 'organization' ? 'administer' : 'partition');

function checkMayAsk(principal: Principal, scope: 'organization' | 'project', project: string | null | undefined) {
  if (scope === 'organization' && principal.role === 'project-member') {
    throw new AllotError('forbidden', "a project-member may ask for its project's cap or guarantee, not the organization's quota");
  }
  if (principal.role === 'project-member' && project !== principal.project) throw notFound(`project "${project}"`);
}

/** The request, if the caller may see it (a project-member: its own project's only). */
async function visible(request: FastifyRequest, ledger: Ledger, organization: string, id: string) {
  const found = await ledger.getQuotaRequest(organization, id);
  if (request.principal.role === 'project-member' && found.project !== request.principal.project) throw notFound(`quota request "${id}"`);
  return found;
}

/** The request, if the caller may see it and grant (approve or deny) it. */
async function grantable(request: FastifyRequest, ledger: Ledger, organization: string, id: string, verb: 'grant' | 'deny') {
  const found = await visible(request, ledger, organization, id);
  if (!mayGrant(request.principal, found.scope)) throw new AllotError('forbidden', `a ${request.principal.role} may not ${verb} this request`);
  return found;
}

const ok = (body: QuotaRequest) => ({ status: 200, headers: {}, body });
const headers = CreateHeaders;

export const quotaRequests = {
  create: write(
    {
      summary: 'Ask for a quota, cap or guarantee',
      description:
        'Pending until someone who may set the value approves it (possibly granting less), denies it, or it expires; a decrease by someone who may set the value, or an increase the kind\'s policy approves, applies at once (201 with state approved). One open request per organization, scope and kind: another is 409 quota-request-open naming it. A cut deeper than the kind\'s safety check needs force (409 decrease-needs-force).',
      params: OrganizationParams,
      querystring: RequestForceQuery,
      headers,
      body: QuotaRequestBody,
      response: { 201: QuotaRequestSchema, ...problemResponses(400, 401, 403, 404, 409) },
    },
    async (request, options, { ledger }) => {
      const { body, principal } = request;
      checkMayAsk(principal, body.scope, body.project);
      const force = request.query.force === 'true';
      return ledger.createQuotaRequest(request.params.organization, body, { ...options, mayApply: mayGrant(principal, body.scope), force });
    },
    (body: QuotaRequest) => ({ status: 201, headers: { location: `/v1/organizations/${body.organization}/quota-requests/${body.id}` }, body }),
  ),

  list: read(
    {
      summary: "An organization's quota requests, oldest first",
      description: '`state` keeps requests in that state (pending: the approval queue). A project-member sees its own project\'s.',
      params: OrganizationParams,
      querystring: QuotaRequestQuery,
      response: { 200: pageOf(QuotaRequestSchema), ...problemResponses(400, 401, 404) },
    },
    async (request, { ledger }) => {
      const { state, limit, cursor } = request.query;
      const project = request.principal.role === 'project-member' ? request.principal.project! : undefined;
      return ledger.listQuotaRequests(request.params.organization, {
        ...(state ? { state } : {}),
        ...(project ? { project } : {}),
        ...(limit ? { limit: Number(limit) } : {}),
        ...(cursor ? { cursor } : {}),
      });
    },
  ),

  get: read(
    {
      summary: 'A quota request; with wait, once it leaves pending',
      description: '`?wait=30s` answers when the request leaves pending, or with it still pending when the time is up (at most 60s).',
      params: QuotaRequestParams,
      querystring: QuotaRequestWait,
      response: { 200: QuotaRequestSchema, ...problemResponses(400, 401, 404) },
    },
    async (request, { ledger }) => {
      const { organization, id } = request.params;
      const found = await visible(request, ledger, organization, id);
      const waitMs = Math.min(Number((request.query.wait ?? '0s').slice(0, -1)) * 1000, waitMsMax);
      return waitMs > 0 && found.state === 'pending' ? ledger.waitForQuotaRequest(organization, id, waitMs) : found;
    },
  ),

  approve: write(
    {
      summary: 'Approve a pending quota request, granting the preferred value or less',
      description:
        'Applies the change through the quota rules in the same transaction: a grant the rules refuse (a cap below usage, guarantees over the quota) is that refusal, and the request stays pending. Service-admins approve organization quotas; org-admins, project caps and guarantees.',
      params: QuotaRequestParams,
      querystring: RequestForceQuery,
      headers,
      body: ApproveBody,
      response: { 200: QuotaRequestSchema, ...problemResponses(400, 401, 403, 404, 409) },
    },
    async (request, options, { ledger }) => {
      const { organization, id } = request.params;
      await grantable(request, ledger, organization, id, 'grant');
      return ledger.approveQuotaRequest(organization, id, { ...request.body, force: request.query.force === 'true' }, options);
    },
    ok,
  ),

  deny: write(
    {
      summary: 'Deny a pending quota request, saying why',
      description: 'Whoever may approve it may deny it.',
      params: QuotaRequestParams,
      headers,
      body: DenyBody,
      response: { 200: QuotaRequestSchema, ...problemResponses(400, 401, 403, 404, 409) },
    },
    async (request, options, { ledger }) => {
      const { organization, id } = request.params;
      await grantable(request, ledger, organization, id, 'deny');
      return ledger.denyQuotaRequest(organization, id, request.body.reason, options);
    },
    ok,
  ),

  cancel: write(
    {
      summary: 'Cancel a pending quota request',
      description: 'Whoever may ask for it may cancel it, as may whoever may approve it.',
      params: QuotaRequestParams,
      headers,
      response: { 200: QuotaRequestSchema, ...problemResponses(400, 401, 403, 404, 409) },
    },
    async (request, options, { ledger }) => {
      const { organization, id } = request.params;
      const found = await visible(request, ledger, organization, id);
      checkMayAsk(request.principal, found.scope, found.project);
      return ledger.cancelQuotaRequest(organization, id, options);
    },
    ok,
  ),
};

export const requestPolicies = {
  get: read(
    {
      summary: "A kind's quota request policy",
      description: 'What is approved without a person, the safety check on cuts, and how long a request stays pending (the defaults when none was set).',
      params: KindParams,
      response: { 200: RequestPolicy, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getRequestPolicy(params.kind),
  ),
  put: endpoint({
    schema: {
      summary: "Set a kind's quota request policy",
      description: 'The parts listed change; the rest stay. Service-admins only.',
      params: KindParams,
      body: RequestPolicyBody,
      response: { 200: RequestPolicy, ...problemResponses(400, 401, 403, 404) },
    },
    handler: async (request, _reply, { ledger }) => ledger.putRequestPolicy(request.params.kind, request.body, { principal: request.principal.id }),
  }),
};
