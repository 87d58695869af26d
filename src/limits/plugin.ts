/**
 * A Fastify plugin that exposes a host's trackers to service-admins: list, get, recount, and
 * set or remove a limit (the allot controller calls these). Trackers are hidden: a request
 * that `authorize` does not accept gets the host's own 404 answer, exactly as if the routes did
 * not exist.
 *
 *   app.register(limitsAdminRoutes, { mixin, authorize: (request) => isServiceAdmin(request) });
 */
import { Ajv } from 'ajv';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { LimitExceededError, LimitsUsageError } from './errors.js';
import type { LimitsMixin } from './mixin.js';

export interface LimitsAdminOptions {
  mixin: LimitsMixin;
  /** True for a service-admin. Everyone else sees 404. */
  authorize: (request: FastifyRequest) => boolean | Promise<boolean>;
  /**
   * Where the routes live (default `/admin`). (Not `prefix`: Fastify applies a `prefix`
   * register option itself, so it would count twice.)
   */
  basePath?: string;
}

const problemContentType = 'application/problem+json';

function problem(reply: FastifyReply, request: FastifyRequest, status: number, code: string, detail: string, extra = {}) {
  return reply
    .code(status)
    .type(problemContentType)
    .send({ type: `/problems/${code}`, title: code, status, detail, instance: request.url, ...extra });
}

const name = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' } as const;
const trackerParams = {
  type: 'object',
  properties: { project: name, resourceType: name },
  required: ['project', 'resourceType'],
  additionalProperties: false,
} as const;
const filterSchema = {
  type: 'object',
  properties: { project: name, resourceType: name },
  additionalProperties: false,
} as const;

/** The plugin's errors as problems: a usage error 400 or 404, a refusal 409, the rest 500. */
function sendError(error: unknown, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof LimitsUsageError) {
    return problem(reply, request, error.code === 'not-found' ? 404 : 400, error.code, error.message);
  }
  if (error instanceof LimitExceededError) {
    return problem(reply, request, 409, 'limit-exceeded', error.message);
  }
  const status = (error as { statusCode?: number }).statusCode ?? 500;
  if (status >= 400 && status < 500) return problem(reply, request, status, 'invalid-request', (error as Error).message);
  request.log.error({ err: error }, 'unexpected error');
  return problem(reply, request, 500, 'internal-error', 'The server could not complete the request.');
}

export const limitsAdminRoutes: FastifyPluginAsync<LimitsAdminOptions> = async (app, options) => {
  const { mixin, authorize } = options;
  const prefix = options.basePath ?? '/admin';
  // Strict validation whatever the host's own settings: no type coercion, no dropped fields.
  const ajv = new Ajv({ coerceTypes: false, removeAdditional: false, allErrors: true, strict: false });
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));

  app.addHook('onRequest', async (request, reply) => {
    // The host's own 404 answer, whatever it is: a stranger cannot tell these routes exist.
    if (!(await authorize(request))) {
      reply.callNotFound();
      return reply;
    }
  });
  app.setErrorHandler(sendError);

  app.get(`${prefix}/trackers`, { schema: { querystring: filterSchema } }, async (request) => ({
    items: await mixin.listTrackers(request.query as { project?: string; resourceType?: string }),
    drifts: await mixin.driftCount(),
  }));

  app.get(`${prefix}/trackers/:project/:resourceType`, { schema: { params: trackerParams } }, async (request) => {
    const { project, resourceType } = request.params as { project: string; resourceType: string };
    return mixin.getTracker(project, resourceType);
  });

  app.get(`${prefix}/trackers/journal`, { schema: { querystring: filterSchema } }, async (request) => ({
    items: await mixin.readJournal(request.query as { project?: string; resourceType?: string }),
  }));

  app.post(
    `${prefix}/trackers/recount`,
    { schema: { body: { anyOf: [filterSchema, { type: 'null' }] } } },
    async (request) => mixin.recountWithLeftovers((request.body ?? {}) as { project?: string; resourceType?: string }),
  );

  app.put(
    `${prefix}/limits/:project/:resourceType`,
    {
      schema: {
        params: trackerParams,
        body: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } },
          required: ['limit'],
          additionalProperties: false,
        },
      },
    },
    async (request) => {
      const { project, resourceType } = request.params as { project: string; resourceType: string };
      return mixin.setLimit(project, resourceType, (request.body as { limit: number }).limit);
    },
  );

  app.delete(`${prefix}/limits/:project/:resourceType`, { schema: { params: trackerParams } }, async (request, reply) => {
    const { project, resourceType } = request.params as { project: string; resourceType: string };
    if (!(await mixin.deleteTracker(project, resourceType))) {
      return problem(reply, request, 404, 'not-found', `no tracker for ${resourceType} in project ${project}`);
    }
    return reply.code(204).send();
  });
};
