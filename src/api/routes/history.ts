/** Usage over time: an organization's quota usage per kind, and a limit's usage per region. */
import { Type } from '@sinclair/typebox';
import { numberOrUndefined, read } from '../route.js';
import {
  HistorySeries,
  LimitHistoryQuery,
  LimitParams,
  OrganizationParams,
  problemResponses,
  QuotaHistoryQuery,
} from '../../schemas/index.js';

export const history = {
  ofQuota: read(
    {
      summary: "An organization's usage of a kind over time, sampled by the controller",
      description:
        "One point per step (default: an hour over the last day), each the step's highest usage with the quota in force then.",
      params: OrganizationParams,
      querystring: QuotaHistoryQuery,
      response: { 200: HistorySeries, ...problemResponses(400, 401, 404) },
    },
    ({ params, query }, { ledger }) =>
      ledger.getQuotaHistory(params.organization, query.kind, { from: query.from, to: query.to, step: numberOrUndefined(query.step) }),
  ),

  ofLimit: read(
    {
      summary: "A limit's usage over time, one series per region (or the one asked for)",
      description:
        "One point per step, each the step's highest usage with the limit in force then; 404 for a region the limit does not have.",
      params: LimitParams,
      querystring: LimitHistoryQuery,
      response: { 200: Type.Object({ items: Type.Array(HistorySeries) }), ...problemResponses(400, 401, 404) },
    },
    async ({ params, query }, { ledger }) => {
      const { organization, project, service, resourceType } = params;
      const { region, from, to, step } = query;
      return {
        items: await ledger.getLimitHistory(organization, project, service, resourceType, { region, from, to, step: numberOrUndefined(step) }),
      };
    },
  ),
};
