/** Usage over time: an organization's quota usage per kind, and a limit's usage per region. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Ledger } from '../../ledger/ledger.js';
import { Id, LimitParams, OrganizationParams, problemResponses, Quantity } from '../schemas.js';

const HistoryPoint = Type.Object({
  at: Type.String({ description: 'Start of the step' }),
  used: Type.Union([Quantity], { description: 'The highest usage sampled in the step' }),
  quantity: Type.Union([Quantity, Type.Null()], { description: 'The limit in force then (null: unlimited)' }),
});
const HistorySeries = Type.Object({
  organization: Type.String(),
  series: Type.String({ description: 'quota:<kind>, or limit:<project>/<service>/<type>/<region>' }),
  from: Type.String(),
  to: Type.String(),
  stepSeconds: Type.Integer(),
  points: Type.Array(HistoryPoint),
});
const range = {
  from: Type.Optional(Type.String({ maxLength: 64, description: 'ISO 8601; default: 24 hours before `to`' })),
  to: Type.Optional(Type.String({ maxLength: 64, description: 'ISO 8601; default: now' })),
  step: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: 'Seconds per point (each point is the step\'s highest usage)' })),
};
const strict = { additionalProperties: false };

export const historyRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger }> = async (app, { ledger }) => {
  app.get('/v1/organizations/:organization/history', {
    config: { action: 'read' },
    schema: {
      tags: ['history'],
      summary: "An organization's usage of a kind over time, sampled by the controller",
      params: OrganizationParams,
      querystring: Type.Object({ kind: Id, ...range }, strict),
      response: { 200: HistorySeries, ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => {
      const { kind, from, to, step } = request.query;
      return ledger.getQuotaHistory(request.params.organization, kind, {
        from,
        to,
        step: step === undefined ? undefined : Number(step),
      });
    },
  });

  app.get('/v1/organizations/:organization/projects/:project/limits/:service/:resourceType/history', {
    config: { action: 'read' },
    schema: {
      tags: ['history'],
      summary: "A limit's usage over time, one series per region (or the one asked for)",
      params: LimitParams,
      querystring: Type.Object({ region: Type.Optional(Id), ...range }, strict),
      response: { 200: Type.Object({ items: Type.Array(HistorySeries) }), ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => {
      const { organization, project, service, resourceType } = request.params;
      const { region, from, to, step } = request.query;
      return {
        items: await ledger.getLimitHistory(organization, project, service, resourceType, {
          region,
          from,
          to,
          step: step === undefined ? undefined : Number(step),
        }),
      };
    },
  });
};
