/** Quotas: an organization's, per kind; a project's quotas (cap and guarantee), per kind. */
import type { ProjectQuotaSet, QuotaSet } from '../../ledger/types.js';
import { build } from '../../ledger/engine/build.js';
import { etagOf, ifMatchOf } from '../etag.js';
import { decision, read } from '../route.js';
import {
  ForceQuery,
  MutationHeaders,
  OrganizationParams,
  problemResponses,
  ProjectParams,
  ProjectQuotaBody,
  ProjectQuotas,
  QuotaBody,
  Quotas,
} from '../../schemas/index.js';

const quotaOutcome = (set: QuotaSet | ProjectQuotaSet) => ({
  status: 200,
  headers: { etag: etagOf(set.generation) },
  body: set,
});

export const quotas = {
  get: read(
    {
      summary: "Read an organization's quotas and usage, per kind",
      description: 'The ETag is the quota set\'s generation; send it in If-Match when you PUT.',
      params: OrganizationParams,
      response: { 200: Quotas, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getQuotaSet(params.organization),
    { etag: true },
  ),

  set: decision(
    {
      summary: "Set an organization's quotas for the listed kinds",
      description:
        'Kinds not listed keep their quota. A quota below current usage is refused ' +
        '(409 quota-below-usage) unless force=true, which leaves the kind over limit: it then ' +
        'accepts only changes that do not raise its usage. With If-Match, refused with 412 if ' +
        'the quota set changed since that ETag.',
      params: OrganizationParams,
      querystring: ForceQuery,
      headers: MutationHeaders,
      body: QuotaBody,
      response: { 200: Quotas, ...problemResponses(400, 401, 404, 409, 412, 422) },
    },
    (request) =>
      build.setQuotas(request.params.organization, request.body.quotas, request.query.force === 'true', ifMatchOf(request)),
    quotaOutcome,
    { answers: { etag: true } },
  ),
};

export const projectQuotas = {
  get: read(
    {
      summary: "Read a project's caps, guarantees and usage, per kind, and what it can still take",
      description: "The ETag is the project's cap-and-guarantee set's generation; send it in If-Match when you PUT.",
      params: ProjectParams,
      response: { 200: ProjectQuotas, ...problemResponses(400, 401, 404) },
    },
    ({ params }, { ledger }) => ledger.getProjectQuotaSet(params.organization, params.project),
    { etag: true },
  ),

  set: decision(
    {
      summary: "Set a project's caps and guarantees for the listed kinds",
      description:
        'Per listed kind, `cap` (the most the project may use) and `guaranteed` (a part of the ' +
        "organization's quota no other project may take); either left out or null means none. " +
        'Kinds not listed keep theirs. Caps may add up to more than the quota; guarantees may ' +
        "not (409 guarantees-exceed-quota, even with force). A cap below the project's usage is " +
        "refused (409 quota-below-usage), and so is a raised guarantee the organization's usage " +
        'leaves no room for (409 guarantee-unavailable), unless force=true. With If-Match, ' +
        "refused with 412 if the project's set changed since that ETag.",
      params: ProjectParams,
      querystring: ForceQuery,
      headers: MutationHeaders,
      body: ProjectQuotaBody,
      response: { 200: ProjectQuotas, ...problemResponses(400, 401, 404, 409, 412, 422) },
    },
    (request) => {
      const { organization, project } = request.params;
      return build.setProjectQuotas(organization, project, request.body.quotas, request.query.force === 'true', ifMatchOf(request));
    },
    quotaOutcome,
    { answers: { etag: true } },
  ),
};
