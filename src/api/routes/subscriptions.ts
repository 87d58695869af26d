/**
 * Webhook subscriptions: an organization's (org-admins) and every organization's
 * (service-admins, at /v1/subscriptions). The target is checked for request forgery when
 * subscribed and again at every delivery (src/webhooks).
 */
import { Type } from '@sinclair/typebox';
import { invalid } from '../../domain/errors.js';
import { checkTarget, TargetRefused, type AllowList } from '../../webhooks/address.js';
import { principalOf } from '../auth.js';
import { endpoint, read } from '../route.js';
import {
  listOf,
  NewSubscription,
  OrganizationParams,
  OrganizationSubscriptionParams,
  problemResponses,
  Subscription,
  SubscriptionBody,
  SubscriptionParams,
} from '../../schemas/index.js';

/** Refuses a target that resolves to a forbidden address, or does not resolve (in 5 s), as a 400. */
async function checkUrl(url: string, allow: AllowList): Promise<void> {
  await checkTarget(url, allow).catch((error: unknown) => {
    throw error instanceof TargetRefused ? invalid('url', error.message) : error;
  });
}

const created = {
  summary: 'Subscribe a URL to events',
  description:
    'Journal entries (filtered), threshold crossings with hysteresis, and a denial digest, POSTed and signed per Standard Webhooks with the secret in the answer (shown once). A target resolving to a loopback, private, link-local or metadata address is refused unless the operator allowed it (--webhook-allow).',
  body: SubscriptionBody,
  response: { 201: NewSubscription, ...problemResponses(400, 401, 403, 404) },
};

const noContent = { 204: { type: 'null', description: 'Deleted' } } as const;

type Where = 'organization' | 'all';
const paramsOf = (where: Where) => (where === 'organization' ? OrganizationSubscriptionParams : SubscriptionParams);
/** The organization a path names; undefined at /v1/subscriptions (any subscription). */
const scopeOf = (params: object) => ('organization' in params ? (params.organization as string) : undefined);

/** The endpoints of one subscription, at an organization's path or at /v1/subscriptions/{id}. */
const one = (where: Where) => ({
  get: read(
    {
      summary: 'A subscription and its delivery state',
      description: 'Per organization: the last revision delivered, failed attempts in a row, the next attempt, the last error; the secret is never shown again.',
      params: paramsOf(where), response: { 200: Subscription, ...problemResponses(401, 403, 404) } },
    async (request, { ledger }) => ledger.getSubscription(request.params.id, scopeOf(request.params)),
  ),
  delete: endpoint({
    schema: {
      summary: 'Delete a subscription',
      description: 'Nothing more is sent to it; a delivery in flight may still arrive.',
      params: paramsOf(where), response: { ...noContent, ...problemResponses(401, 403, 404) } },
    handler: async (request, reply, { ledger }) => {
      await ledger.deleteSubscription(request.params.id, scopeOf(request.params));
      return reply.code(204).send();
    },
  }),
  resume: endpoint({
    schema: {
      summary: 'Resume a failing subscription from where its deliveries stopped',
      description: 'Failing and retrying deliveries are attempted again at once; nothing is skipped.',
      params: paramsOf(where),
      response: { 200: Subscription, ...problemResponses(401, 403, 404) },
    },
    handler: async (request, _reply, { ledger }) => ledger.resumeSubscription(request.params.id, scopeOf(request.params)),
  }),
});

export const subscriptions = {
  create: endpoint({
    schema: { ...created, params: OrganizationParams },
    handler: async (request, reply, { ledger, webhookAllow }) => {
      await ledger.getOrganization(request.params.organization);
      await checkUrl(request.body.url, webhookAllow);
      const subscription = await ledger.createSubscription(request.params.organization, request.body, { principal: principalOf(request) });
      return reply.code(201).send(subscription);
    },
  }),
  list: read(
    {
      summary: "An organization's subscriptions and their delivery state",
      description: "Its own subscriptions (not the service-admins' for every organization), without their secrets.",
      params: OrganizationParams, response: { 200: listOf(Subscription), ...problemResponses(401, 403, 404) } },
    async (request, { ledger }) => {
      await ledger.getOrganization(request.params.organization);
      return { items: await ledger.listSubscriptions(request.params.organization) };
    },
  ),
  ...one('organization'),
};

/** Service-admins: subscriptions to every organization's events, and every subscription. */
export const allSubscriptions = {
  create: endpoint({
    schema: {
      ...created,
      summary: "Subscribe a URL to every organization's events",
      params: Type.Object({}, { additionalProperties: false }),
    },
    handler: async (request, reply, { ledger, webhookAllow }) => {
      await checkUrl(request.body.url, webhookAllow);
      const subscription = await ledger.createSubscription(null, request.body, { principal: principalOf(request) });
      return reply.code(201).send(subscription);
    },
  }),
  list: read(
    {
      summary: 'Every subscription, of every organization and for all of them',
      description: 'Service-admins only; without their secrets.',
      response: { 200: listOf(Subscription), ...problemResponses(401, 403) } },
    async (_request, { ledger }) => ({ items: await ledger.listSubscriptions() }),
  ),
  ...one('all'),
};
