/**
 * The API, one row per route: method, path, the action a caller's role must allow (auth.ts),
 * the OpenAPI tag, the endpoint (schema and handler, beside its resource) and its operationId. A new route is
 * one row here and one endpoint in its resource's file; `app.ts` mounts the table once, and a
 * path asked with a method it does not have answers 405 with `Allow`.
 */
import type { Action } from '../../domain/access.js';
import type { Endpoint } from '../route.js';
import { allocations } from './allocations.js';
import { batches } from './batch.js';
import { kinds, organizations, projects } from './catalog.js';
import { history } from './history.js';
import { holds } from './holds.js';
import { journal } from './journal.js';
import { limits } from './limits.js';
import { projectQuotas, quotas } from './quotas.js';
import { regions } from './regions.js';
import { quotaRequests, requestPolicies } from './requests.js';
import { allSubscriptions, subscriptions } from './subscriptions.js';
import { tokens } from './tokens.js';

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface Row {
  method: Method;
  path: string;
  action: Action;
  tag: string;
  endpoint: Endpoint;
  /** The OpenAPI operationId: stable, the name generated clients give the call. */
  operationId: string;
}

const organization = '/v1/organizations/:organization';
const project = `${organization}/projects/:project`;
const limit = `${project}/limits/:service/:resourceType`;

const row = (method: Method, path: string, action: Action, tag: string, endpoint: Endpoint, operationId: string): Row => ({
  method,
  path,
  action,
  tag,
  endpoint,
  operationId,
});

/** The tags, in the order the document lists them, with what each covers. */
export const tags: readonly { name: string; description: string }[] = [
  { name: 'resource kinds', description: 'What can be allocated: GPUs, servers, storage… with a default quota and a format' },
  { name: 'organizations', description: 'Tenants: an organization holds quotas and projects' },
  { name: 'projects', description: "An organization's projects: where allocations and holds live" },
  { name: 'quotas', description: "An organization's quota per kind, and each project's quota (cap and guarantee)" },
  { name: 'allocations', description: 'Quota allocated to a referenced resource, checked against every quota in one transaction' },
  { name: 'holds', description: 'Quota held for a referenced resource until confirmed, released or expired' },
  { name: 'batches', description: 'Up to 1,000 allocation and hold operations of one organization decided at once' },
  { name: 'journal', description: "Every change of an organization, by gap-free revision; pages and a live stream" },
  { name: 'tokens', description: "API tokens and the caller's own role and scope" },
  { name: 'limits', description: 'Limits per project, service, resource type and region, kept by host services (the limits mixin)' },
  { name: 'regions', description: 'Regions, the host services registered in them, and the regions of each project' },
  { name: 'history', description: 'Usage over time, sampled by the controller' },
  { name: 'quota requests', description: 'Asking for a quota, cap or guarantee; approving, denying, waiting; the policies that approve some' },
  { name: 'subscriptions', description: 'Webhooks: journal entries, threshold crossings and denial digests, signed and delivered at least once' },
];

export const table: readonly Row[] = [
  row('GET', '/v1/resource-kinds', 'read', 'resource kinds', kinds.list, 'listResourceKinds'),
  row('GET', '/v1/resource-kinds/:kind', 'read', 'resource kinds', kinds.get, 'getResourceKind'),
  row('PUT', '/v1/resource-kinds/:kind', 'administer', 'resource kinds', kinds.put, 'putResourceKind'),

  row('GET', '/v1/organizations', 'read', 'organizations', organizations.list, 'listOrganizations'),
  row('GET', organization, 'read', 'organizations', organizations.get, 'getOrganization'),
  row('PUT', organization, 'administer', 'organizations', organizations.put, 'putOrganization'),

  row('GET', `${organization}/projects`, 'read-organization', 'projects', projects.list, 'listProjects'),
  row('GET', project, 'read', 'projects', projects.get, 'getProject'),
  row('PUT', project, 'create-project', 'projects', projects.put, 'putProject'),
  row('DELETE', project, 'create-project', 'projects', projects.delete, 'deleteProject'),

  row('GET', `${organization}/quotas`, 'read', 'quotas', quotas.get, 'getQuotas'),
  row('PUT', `${organization}/quotas`, 'administer', 'quotas', quotas.set, 'setQuotas'),
  row('GET', `${project}/quotas`, 'read', 'quotas', projectQuotas.get, 'getProjectQuotas'),
  row('PUT', `${project}/quotas`, 'partition', 'quotas', projectQuotas.set, 'setProjectQuotas'),

  row('GET', `${organization}/allocations`, 'read-organization', 'allocations', allocations.listOfOrganization, 'listOrganizationAllocations'),
  row('GET', `${project}/allocations`, 'read', 'allocations', allocations.list, 'listAllocations'),
  row('POST', `${project}/allocations`, 'allocate', 'allocations', allocations.create, 'createAllocation'),
  row('GET', `${project}/allocations/:id`, 'read', 'allocations', allocations.get, 'getAllocation'),
  row('PUT', `${project}/allocations/:id`, 'allocate', 'allocations', allocations.replace, 'replaceAllocation'),
  row('DELETE', `${project}/allocations/:id`, 'allocate', 'allocations', allocations.delete, 'deleteAllocation'),

  row('GET', `${project}/holds`, 'read', 'holds', holds.list, 'listHolds'),
  row('POST', `${project}/holds`, 'allocate', 'holds', holds.create, 'createHold'),
  row('GET', `${project}/holds/:id`, 'read', 'holds', holds.get, 'getHold'),
  row('POST', `${project}/holds/:id/confirm`, 'allocate', 'holds', holds.confirm, 'confirmHold'),
  row('POST', `${project}/holds/:id/release`, 'allocate', 'holds', holds.release, 'releaseHold'),

  row('POST', `${organization}/batch`, 'allocate', 'batches', batches.decide, 'decideBatch'),

  row('GET', `${organization}/journal`, 'read-organization', 'journal', journal.read, 'readJournal'),
  row('GET', `${organization}/watch`, 'read-organization', 'journal', journal.watch, 'watchJournal'),

  row('GET', '/v1/whoami', 'read', 'tokens', tokens.whoami, 'whoAmI'),
  row('GET', '/v1/tokens', 'administer', 'tokens', tokens.list, 'listTokens'),
  row('POST', '/v1/tokens', 'administer', 'tokens', tokens.create, 'createToken'),
  row('DELETE', '/v1/tokens/:id', 'administer', 'tokens', tokens.revoke, 'revokeToken'),

  row('GET', `${organization}/limits`, 'read-organization', 'limits', limits.listOfOrganization, 'listOrganizationLimits'),
  row('GET', `${project}/limits`, 'read', 'limits', limits.list, 'listLimits'),
  row('GET', limit, 'read', 'limits', limits.get, 'getLimit'),
  row('PUT', limit, 'administer', 'limits', limits.set, 'setLimit'),
  row('DELETE', limit, 'administer', 'limits', limits.delete, 'deleteLimit'),
  row('PUT', `${limit}/regions/:region/usage`, 'report-usage', 'limits', limits.reportUsage, 'reportLimitUsage'),

  row('GET', '/v1/regions', 'administer', 'regions', regions.list, 'listRegions'),
  row('GET', '/v1/regions/:region', 'administer', 'regions', regions.get, 'getRegion'),
  row('PUT', '/v1/regions/:region', 'administer', 'regions', regions.put, 'putRegion'),
  row('PUT', '/v1/regions/:region/hosts/:service', 'administer', 'regions', regions.putHost, 'putRegionHost'),
  row('DELETE', '/v1/regions/:region/hosts/:service', 'administer', 'regions', regions.deleteHost, 'deleteRegionHost'),
  row('GET', `${project}/regions`, 'read', 'regions', regions.ofProject, 'getProjectRegions'),
  row('PUT', `${project}/regions`, 'create-project', 'regions', regions.setOfProject, 'setProjectRegions'),

  row('GET', `${organization}/history`, 'read', 'history', history.ofQuota, 'getQuotaHistory'),
  row('GET', `${limit}/history`, 'read', 'history', history.ofLimit, 'getLimitHistory'),

  row('POST', `${organization}/quota-requests`, 'request-quota', 'quota requests', quotaRequests.create, 'createQuotaRequest'),
  row('GET', `${organization}/quota-requests`, 'read', 'quota requests', quotaRequests.list, 'listQuotaRequests'),
  row('GET', `${organization}/quota-requests/:id`, 'read', 'quota requests', quotaRequests.get, 'getQuotaRequest'),
  row('POST', `${organization}/quota-requests/:id/approve`, 'partition', 'quota requests', quotaRequests.approve, 'approveQuotaRequest'),
  row('POST', `${organization}/quota-requests/:id/deny`, 'partition', 'quota requests', quotaRequests.deny, 'denyQuotaRequest'),
  row('POST', `${organization}/quota-requests/:id/cancel`, 'request-quota', 'quota requests', quotaRequests.cancel, 'cancelQuotaRequest'),
  row('GET', '/v1/resource-kinds/:kind/request-policy', 'read', 'quota requests', requestPolicies.get, 'getRequestPolicy'),
  row('PUT', '/v1/resource-kinds/:kind/request-policy', 'administer', 'quota requests', requestPolicies.put, 'putRequestPolicy'),

  row('GET', `${organization}/subscriptions`, 'subscribe', 'subscriptions', subscriptions.list, 'listSubscriptions'),
  row('POST', `${organization}/subscriptions`, 'subscribe', 'subscriptions', subscriptions.create, 'createSubscription'),
  row('GET', `${organization}/subscriptions/:id`, 'subscribe', 'subscriptions', subscriptions.get, 'getSubscription'),
  row('DELETE', `${organization}/subscriptions/:id`, 'subscribe', 'subscriptions', subscriptions.delete, 'deleteSubscription'),
  row('POST', `${organization}/subscriptions/:id/resume`, 'subscribe', 'subscriptions', subscriptions.resume, 'resumeSubscription'),
  row('GET', '/v1/subscriptions', 'administer', 'subscriptions', allSubscriptions.list, 'listAllSubscriptions'),
  row('POST', '/v1/subscriptions', 'administer', 'subscriptions', allSubscriptions.create, 'createAllOrganizationsSubscription'),
  row('GET', '/v1/subscriptions/:id', 'administer', 'subscriptions', allSubscriptions.get, 'getAnySubscription'),
  row('DELETE', '/v1/subscriptions/:id', 'administer', 'subscriptions', allSubscriptions.delete, 'deleteAnySubscription'),
  row('POST', '/v1/subscriptions/:id/resume', 'administer', 'subscriptions', allSubscriptions.resume, 'resumeAnySubscription'),
];
