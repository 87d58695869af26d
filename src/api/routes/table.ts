/**
 * The API, one row per route: method, path, the action a caller's role must allow (auth.ts),
 * the OpenAPI tag, and the endpoint (schema and handler, beside its resource). A new route is
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
import { tokens } from './tokens.js';

export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

export interface Row {
  method: Method;
  path: string;
  action: Action;
  tag: string;
  endpoint: Endpoint;
}

const organization = '/v1/organizations/:organization';
const project = `${organization}/projects/:project`;
const limit = `${project}/limits/:service/:resourceType`;

const row = (method: Method, path: string, action: Action, tag: string, endpoint: Endpoint): Row => ({
  method,
  path,
  action,
  tag,
  endpoint,
});

export const table: readonly Row[] = [
  row('GET', '/v1/resource-kinds', 'read', 'resource kinds', kinds.list),
  row('GET', '/v1/resource-kinds/:kind', 'read', 'resource kinds', kinds.get),
  row('PUT', '/v1/resource-kinds/:kind', 'administer', 'resource kinds', kinds.put),

  row('GET', '/v1/organizations', 'read', 'organizations', organizations.list),
  row('GET', organization, 'read', 'organizations', organizations.get),
  row('PUT', organization, 'administer', 'organizations', organizations.put),

  row('GET', `${organization}/projects`, 'read-organization', 'projects', projects.list),
  row('GET', project, 'read', 'projects', projects.get),
  row('PUT', project, 'create-project', 'projects', projects.put),
  row('DELETE', project, 'create-project', 'projects', projects.delete),

  row('GET', `${organization}/quotas`, 'read', 'quotas', quotas.get),
  row('PUT', `${organization}/quotas`, 'administer', 'quotas', quotas.set),
  row('GET', `${project}/quotas`, 'read', 'quotas', projectQuotas.get),
  row('PUT', `${project}/quotas`, 'partition', 'quotas', projectQuotas.set),

  row('GET', `${organization}/allocations`, 'read-organization', 'allocations', allocations.listOfOrganization),
  row('GET', `${project}/allocations`, 'read', 'allocations', allocations.list),
  row('POST', `${project}/allocations`, 'allocate', 'allocations', allocations.create),
  row('GET', `${project}/allocations/:id`, 'read', 'allocations', allocations.get),
  row('PUT', `${project}/allocations/:id`, 'allocate', 'allocations', allocations.replace),
  row('DELETE', `${project}/allocations/:id`, 'allocate', 'allocations', allocations.delete),

  row('GET', `${project}/holds`, 'read', 'holds', holds.list),
  row('POST', `${project}/holds`, 'allocate', 'holds', holds.create),
  row('GET', `${project}/holds/:id`, 'read', 'holds', holds.get),
  row('POST', `${project}/holds/:id/confirm`, 'allocate', 'holds', holds.confirm),
  row('POST', `${project}/holds/:id/release`, 'allocate', 'holds', holds.release),

  row('POST', `${organization}/batch`, 'allocate', 'batches', batches.decide),

  row('GET', `${organization}/journal`, 'read-organization', 'journal', journal.read),
  row('GET', `${organization}/watch`, 'read-organization', 'journal', journal.watch),

  row('GET', '/v1/whoami', 'read', 'tokens', tokens.whoami),
  row('GET', '/v1/tokens', 'administer', 'tokens', tokens.list),
  row('POST', '/v1/tokens', 'administer', 'tokens', tokens.create),
  row('DELETE', '/v1/tokens/:id', 'administer', 'tokens', tokens.revoke),

  row('GET', `${organization}/limits`, 'read-organization', 'limits', limits.listOfOrganization),
  row('GET', `${project}/limits`, 'read', 'limits', limits.list),
  row('GET', limit, 'read', 'limits', limits.get),
  row('PUT', limit, 'administer', 'limits', limits.set),
  row('DELETE', limit, 'administer', 'limits', limits.delete),
  row('PUT', `${limit}/regions/:region/usage`, 'report-usage', 'limits', limits.reportUsage),

  row('GET', '/v1/regions', 'administer', 'regions', regions.list),
  row('GET', '/v1/regions/:region', 'administer', 'regions', regions.get),
  row('PUT', '/v1/regions/:region', 'administer', 'regions', regions.put),
  row('PUT', '/v1/regions/:region/hosts/:service', 'administer', 'regions', regions.putHost),
  row('DELETE', '/v1/regions/:region/hosts/:service', 'administer', 'regions', regions.deleteHost),
  row('GET', `${project}/regions`, 'read', 'regions', regions.ofProject),
  row('PUT', `${project}/regions`, 'create-project', 'regions', regions.setOfProject),

  row('GET', `${organization}/history`, 'read', 'history', history.ofQuota),
  row('GET', `${limit}/history`, 'read', 'history', history.ofLimit),
];
