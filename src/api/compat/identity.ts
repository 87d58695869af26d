/**
 * The identity service's quota and allocation API, served on the same ledger, so platform
 * services that call it today can move to allot without a code change. Paths, bodies, status
 * codes and the error schema (`error`, `error_description`, `trace_id`) are those of its
 * published OpenAPI document (../shared/compat/uni-identity/server.spec.yaml); organization and
 * project ids there are UUIDs, which name allot organizations and projects of the same id.
 *
 * Where the original is wrong by its own documents, this is right: a check and its write are
 * one transaction across any number of allot processes; a second allocation for the same
 * referenced resource is refused (409 conflict); an organization over quota in one kind can
 * still change the others. Over quota stays 403 forbidden, as clients expect.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { quantityMax } from '../../domain/constants.js';
import { AllotError, type ErrorCode } from '../../domain/errors.js';
import type { Ledger } from '../../ledger/ledger.js';
import type { Allocation, QuotaUsage } from '../../ledger/types.js';

import { installAuth, principalOf, type AuthOptions } from '../auth.js';

type IdentityError =
  | 'invalid_request'
  | 'access_denied'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'unsupported_media_type'
  | 'request_entity_too_large'
  | 'server_error';

/** allot's error codes as the identity service answers them. */
const statusOf: Record<ErrorCode, [number, IdentityError]> = {
  'invalid-request': [400, 'invalid_request'],
  unauthorized: [401, 'access_denied'],
  forbidden: [403, 'forbidden'],
  'not-found': [404, 'not_found'],
  'method-not-allowed': [405, 'method_not_allowed'],
  'quota-exceeded': [403, 'forbidden'],
  'duplicate-allocation': [409, 'conflict'],
  'quota-below-usage': [409, 'conflict'],
  'guarantees-exceed-quota': [409, 'conflict'],
  'guarantee-unavailable': [409, 'conflict'],
  'project-not-empty': [409, 'conflict'],
  'hold-already-resolved': [409, 'conflict'],
  'confirm-exceeds-hold': [409, 'conflict'],
  'quota-request-open': [409, 'conflict'],
  'quota-request-resolved': [409, 'conflict'],
  'decrease-needs-force': [409, 'conflict'],
  'request-in-progress': [409, 'conflict'],
  'precondition-failed': [409, 'conflict'],
  'idempotency-key-reused': [409, 'conflict'],
  'payload-too-large': [413, 'request_entity_too_large'],
  // Not in the document; a client backs off on 429 (with Retry-After) whatever the body says.
  'too-many-requests': [429, 'access_denied'],
  'unsupported-media-type': [415, 'unsupported_media_type'],
  'internal-error': [500, 'server_error'],
  'service-unavailable': [500, 'server_error'],
};

// Lowercase: ids arrive lowercased (see the preValidation hook), as allot's ids are.
const uuid = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' } as const;
const labelValue = { type: 'string', pattern: '^[0-9A-Za-z](?:[0-9A-Za-z-_.]{0,61}[0-9A-Za-z])?$' } as const;
const integer = { type: 'integer', minimum: 0, maximum: quantityMax } as const;

const organizationParams = {
  type: 'object',
  properties: { organizationID: uuid },
  required: ['organizationID'],
} as const;
const projectParams = {
  type: 'object',
  properties: { organizationID: uuid, projectID: uuid },
  required: ['organizationID', 'projectID'],
} as const;
const allocationParams = {
  type: 'object',
  properties: { organizationID: uuid, projectID: uuid, allocationID: uuid },
  required: ['organizationID', 'projectID', 'allocationID'],
} as const;

const quotasWrite = {
  type: 'object',
  required: ['quotas'],
  properties: {
    quotas: {
      type: 'array',
      items: {
        type: 'object',
        required: ['kind', 'quantity'],
        properties: { kind: { type: 'string' }, quantity: integer },
      },
    },
  },
} as const;

const allocationWrite = {
  type: 'object',
  required: ['metadata', 'spec'],
  properties: {
    metadata: {
      type: 'object',
      required: ['name'],
      properties: {
        name: labelValue,
        description: { type: 'string', maxLength: 1024 },
        tags: {
          type: 'array',
          maxItems: 64,
          items: {
            type: 'object',
            required: ['name', 'value'],
            properties: { name: { type: 'string', maxLength: 255 }, value: { type: 'string', maxLength: 1024 } },
          },
        },
      },
    },
    spec: {
      type: 'object',
      required: ['kind', 'id', 'allocations'],
      properties: {
        kind: { type: 'string' },
        id: { type: 'string' },
        allocations: {
          type: 'array',
          items: {
            type: 'object',
            required: ['kind', 'committed', 'reserved'],
            properties: { kind: { type: 'string' }, committed: integer, reserved: integer },
          },
        },
      },
    },
  },
} as const;

interface AllocationWrite {
  metadata: { name: string; description?: string; tags?: { name: string; value: string }[] };
  spec: { kind: string; id: string; allocations: { kind: string; committed: number; reserved: number }[] };
}

interface MetadataRow {
  name: string;
  description: string | null;
  tags: string | null;
}

/** An unlimited kind has no quantity in the original: it is reported as the largest one. */
function quotaRead(quota: QuotaUsage) {
  const quantity = quota.quantity ?? quantityMax;
  return {
    kind: quota.kind,
    quantity,
    used: quota.used,
    // used + free == quantity always (free is negative only after a forced cut below usage).
    free: quantity - quota.used,
    committed: quota.committed,
    reserved: quota.reserved,
    displayName: quota.displayName,
    description: quota.description,
    default: quota.default ?? quantityMax,
    format: quota.format,
  };
}

function allocationRead(allocation: Allocation, metadata: MetadataRow | undefined) {
  return {
    metadata: {
      id: allocation.id,
      name: metadata?.name ?? fallbackName(allocation.resource.id),
      ...(metadata?.description != null ? { description: metadata.description } : {}),
      ...(metadata?.tags ? { tags: JSON.parse(metadata.tags) as unknown[] } : {}),
      organizationId: allocation.organization,
      projectId: allocation.project,
      creationTime: allocation.createdAt,
      createdBy: allocation.createdBy,
      modifiedTime: allocation.updatedAt,
      modifiedBy: allocation.updatedBy,
      provisioningStatus: 'provisioned',
      healthStatus: 'healthy',
    },
    spec: {
      kind: allocation.resource.kind,
      id: allocation.resource.id,
      allocations: allocation.allocations.map(({ kind, committed, reserved }) => ({ kind, committed, reserved })),
    },
  };
}

/** Allocations made through allot's own API have no name: their resource id, if it is a valid one. */
const fallbackName = (resourceId: string) =>
  new RegExp(labelValue.pattern).test(resourceId) ? resourceId : 'undefined';

const metadataRowOf = (metadata: AllocationWrite['metadata']): MetadataRow => ({
  name: metadata.name,
  description: metadata.description ?? null,
  tags: metadata.tags ? JSON.stringify(metadata.tags) : null,
});

const readMetadata = (ledger: Ledger, organization: string, id: string): Promise<MetadataRow | undefined> =>
  ledger.getAllocationMetadata(organization, id);

const inputOf = (body: AllocationWrite) => ({
  resource: { kind: body.spec.kind, id: body.spec.id },
  allocations: body.spec.allocations,
});

/** The original's over-quota message: the kind, the total it would come to, and the limit. */
function describe(error: AllotError): string {
  if (error.code === 'quota-exceeded' && error.extensions.violations) {
    return error.extensions.violations
      .map((v) => `quota exceeded for ${v.kind}: ${v.used + v.requested} requested in total, limit ${v.limit}` +
        (v.scope === 'organization' ? '' : ` (${v.scope === 'project' ? "the project's cap" : "other projects' guarantees"})`))
      .join('; ');
  }
  return error.detail;
}

export interface IdentityCompatOptions extends Omit<AuthOptions, 'tenantParams'> {
  ledger: Ledger;
}

export const identityCompatRoutes: FastifyPluginAsync<IdentityCompatOptions> = async (app, options) => {
  const { ledger } = options;
  installAuth(app, { ...options, tenantParams: { organization: 'organizationID', project: 'projectID' } });
  // A UUID is the same in either case; allot's ids are lowercase. Before validation and before
  // authorization reads the tenant from the path.
  app.addHook('preValidation', async (request) => {
    const params = request.params as Record<string, string>;
    for (const name of ['organizationID', 'projectID', 'allocationID']) {
      if (typeof params[name] === 'string') params[name] = params[name].toLowerCase();
    }
  });

  app.setErrorHandler((error, request, reply) => {
    let allot: AllotError;
    if (error instanceof AllotError) allot = error;
    else if ((error as { validation?: unknown }).validation) allot = new AllotError('invalid-request', (error as Error).message);
    else {
      const status = (error as { statusCode?: number }).statusCode ?? 500;
      if (status === 415) allot = new AllotError('unsupported-media-type', (error as Error).message);
      else if (status === 413) allot = new AllotError('payload-too-large', (error as Error).message);
      else if (status >= 400 && status < 500) allot = new AllotError('invalid-request', (error as Error).message);
      else {
        request.log.error({ err: error }, 'unexpected error');
        allot = new AllotError('internal-error', 'The server could not complete the request.');
      }
    }
    return sendError(request, reply, allot);
  });

  app.get('/api/v1/organizations/:organizationID/quotas', {
    config: { action: 'read' },
    schema: { hide: true, params: organizationParams },
    handler: async (request) => {
      const { organizationID } = request.params as { organizationID: string };
      const quotas = await ledger.getQuotas(organizationID);
      return { quotas: quotas.map(quotaRead) };
    },
  });

  app.put('/api/v1/organizations/:organizationID/quotas', {
    config: { action: 'administer' },
    schema: { hide: true, params: organizationParams, body: quotasWrite },
    handler: async (request) => {
      const { organizationID } = request.params as { organizationID: string };
      const { quotas } = request.body as { quotas: { kind: string; quantity: number }[] };
      // The original sets quotas without comparing them with usage: so does this (force). The
      // guarantees' sum is still never exceeded (409 conflict).
      const set = await ledger.setQuotas(organizationID, quotas, { force: true, principal: principalOf(request) });
      return { quotas: set.map(quotaRead) };
    },
  });

  app.post('/api/v1/organizations/:organizationID/projects/:projectID/allocations', {
    config: { action: 'allocate' },
    schema: { hide: true, params: projectParams, body: allocationWrite },
    handler: async (request, reply) => {
      const { organizationID, projectID } = request.params as { organizationID: string; projectID: string };
      const body = request.body as AllocationWrite;
      const allocation = await ledger.createAllocation(organizationID, projectID, inputOf(body), {
        principal: principalOf(request),
        metadata: metadataRowOf(body.metadata),
      });
      return reply.code(201).send(allocationRead(allocation, metadataRowOf(body.metadata)));
    },
  });

  const allocationPath = '/api/v1/organizations/:organizationID/projects/:projectID/allocations/:allocationID';
  type AllocationParams = { organizationID: string; projectID: string; allocationID: string };

  app.get(allocationPath, {
    config: { action: 'read' },
    schema: { hide: true, params: allocationParams },
    handler: async (request) => {
      const { organizationID, projectID, allocationID } = request.params as AllocationParams;
      const allocation = await ledger.getAllocation(organizationID, projectID, allocationID);
      return allocationRead(allocation, await readMetadata(ledger, organizationID, allocation.id));
    },
  });

  app.put(allocationPath, {
    config: { action: 'allocate' },
    schema: { hide: true, params: allocationParams, body: allocationWrite },
    handler: async (request) => {
      const { organizationID, projectID, allocationID } = request.params as AllocationParams;
      const body = request.body as AllocationWrite;
      const allocation = await ledger.replaceAllocation(organizationID, projectID, allocationID, inputOf(body), {
        principal: principalOf(request),
        metadata: metadataRowOf(body.metadata),
      });
      return allocationRead(allocation, await readMetadata(ledger, organizationID, allocation.id));
    },
  });

  app.delete(allocationPath, {
    config: { action: 'allocate' },
    schema: { hide: true, params: allocationParams },
    handler: async (request, reply) => {
      const { organizationID, projectID, allocationID } = request.params as AllocationParams;
      const { deleted } = await ledger.deleteAllocation(organizationID, projectID, allocationID, {
        principal: principalOf(request),
      });
      // The original answers 202, then 404: a deleted allocation is gone.
      if (!deleted) throw new AllotError('not-found', `allocation "${allocationID}" does not exist`);
      return reply.code(202).send();
    },
  });
};

/** The routes whose document lists no 404: a tenant that is not there (or not visible) is a 403. */
const withoutNotFound = new Set([
  'GET /api/v1/organizations/:organizationID/quotas',
  'PUT /api/v1/organizations/:organizationID/quotas',
  'POST /api/v1/organizations/:organizationID/projects/:projectID/allocations',
]);

function sendError(request: FastifyRequest, reply: FastifyReply, error: AllotError) {
  let [status, code] = statusOf[error.code];
  if (status === 404 && withoutNotFound.has(`${request.method} ${request.routeOptions.url}`)) {
    [status, code] = [403, 'forbidden'];
  }
  if (status === 401) reply.header('www-authenticate', 'Bearer realm="allot"');
  return reply.code(status).type('application/json').send({
    error: code,
    error_description: describe(error),
    trace_id: randomBytes(16).toString('hex'),
  });
}
