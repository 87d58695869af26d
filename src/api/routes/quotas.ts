import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Ledger } from '../../ledger/ledger.js';
import type { QuotaSet } from '../../ledger/types.js';
import { etagOf, ifMatchOf } from '../etag.js';
import { respond } from '../mutation.js';
import {
  ForceQuery,
  MutationHeaders,
  OrganizationParams,
  problemResponses,
  QuotaBody,
  Quotas,
} from '../schemas.js';

const quotaOutcome = (set: QuotaSet) => ({ status: 200, headers: { etag: etagOf(set.generation) }, body: set });

export const quotaRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (app, { ledger }) => {
  app.get('/v1/organizations/:organization/quotas', {
    config: { action: 'read' },
    schema: {
      tags: ['quotas'],
      summary: "Read an organization's quotas and usage, per kind",
      description: 'The ETag is the quota set\'s generation; send it in If-Match when you PUT.',
      params: OrganizationParams,
      response: { 200: Quotas, ...problemResponses(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const set = await ledger.getQuotaSet(request.params.organization);
      return reply.header('etag', etagOf(set.generation)).send(set);
    },
  });

  app.put('/v1/organizations/:organization/quotas', {
    config: { action: 'administer' },
    schema: {
      tags: ['quotas'],
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
    handler: async (request, reply) => {
      const ifGeneration = ifMatchOf(request);
      return respond(
        ledger,
        request,
        reply,
        (options) =>
          ledger.setQuotaSet(request.params.organization, request.body.quotas, {
            ...options,
            ifGeneration,
            force: request.query.force === 'true',
          }),
        quotaOutcome,
      );
    },
  });
};
