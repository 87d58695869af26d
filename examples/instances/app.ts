/**
 * An example host service: it stores `instances` in its own database and embeds the limits
 * mixin, so a project can never have more instances than its tracker's limit — counted by
 * triggers on its own table, in the same transaction as the rows.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
// A host outside this repository imports these from 'allot/limits'.
import { LimitExceededError, limitsAdminRoutes, openLimits, openStore, type LimitsMixin } from '../../src/limits/index.js';

export interface InstancesOptions {
  /** The host's database: `sqlite:PATH` or `postgres://…`. */
  db: string;
  region: string;
  /** Bearer token of the admin routes (trackers, limits). */
  adminToken: string;
  logger?: boolean;
}

interface InstanceRow {
  id: string;
  project_id: string;
  name: string;
  created_at: number;
}

const instanceOf = (row: InstanceRow) => ({
  id: row.id,
  project: row.project_id,
  name: row.name,
  createdAt: new Date(Number(row.created_at)).toISOString(),
});

const problem = (status: number, type: string, detail: string, extra: Record<string, unknown> = {}) => ({
  type: `/problems/${type}`,
  title: type,
  status,
  detail,
  ...extra,
});

const projectParam = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' } as const;

export async function buildInstancesApp(options: InstancesOptions): Promise<{ app: FastifyInstance; mixin: LimitsMixin }> {
  const store = openStore(options.db);
  // The host's own table, created by its own migration.
  await store.transaction(async (tx) => {
    for (const statement of store.setupStatements) await tx.run(statement);
    await tx.run(`CREATE TABLE IF NOT EXISTS instances (
      id TEXT PRIMARY KEY,
      project_id TEXT NOT NULL,
      name TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`);
    await tx.run('CREATE INDEX IF NOT EXISTS instances_by_project ON instances (project_id, id)');
  });
  // The mixin: its tables beside the host's, and triggers that count instances per project.
  const mixin = await openLimits({
    db: store,
    region: options.region,
    tables: [{ table: 'instances', resourceType: 'instances', projectColumn: 'project_id' }],
  });

  const app = Fastify({ logger: options.logger ?? false });
  app.addHook('onClose', async () => {
    await mixin.close();
    await store.close();
  });

  const isAdmin = (authorization: string | undefined) => authorization === `Bearer ${options.adminToken}`;
  await app.register(limitsAdminRoutes, { mixin, authorize: (request) => isAdmin(request.headers.authorization) });

  app.post(
    '/projects/:project/instances',
    {
      schema: {
        params: { type: 'object', properties: { project: projectParam }, required: ['project'] },
        body: {
          type: 'object',
          properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
          required: ['name'],
          additionalProperties: false,
        },
      },
    },
    async (request, reply) => {
      const { project } = request.params as { project: string };
      const { name } = request.body as { name: string };
      const row: InstanceRow = { id: randomUUID(), project_id: project, name, created_at: Date.now() };
      try {
        // The host's usual insert; the trigger counts it, the mixin checks the limit at the end.
        await mixin.transaction((tx) =>
          tx.run('INSERT INTO instances (id, project_id, name, created_at) VALUES (?, ?, ?, ?)', [
            row.id,
            row.project_id,
            row.name,
            row.created_at,
          ]),
        );
      } catch (error) {
        if (!(error instanceof LimitExceededError)) throw error;
        // The tracker's numbers are the limits service's to show: only the admin sees them
        // here. Anyone else learns that the create was refused at the limit, and where.
        const numbers = isAdmin(request.headers.authorization)
          ? { limit: error.limit, used: error.used, requested: error.requested }
          : {};
        const detail = isAdmin(request.headers.authorization)
          ? error.message
          : error.tracked
            ? `project ${project} has reached its limit of ${error.resourceType} in this region`
            : `project ${project} has no capacity for ${error.resourceType} in this region`;
        return reply
          .code(409)
          .type('application/problem+json')
          .send(problem(409, 'limit-exceeded', detail, { resourceType: error.resourceType, project, ...numbers }));
      }
      return reply.code(201).send(instanceOf(row));
    },
  );

  app.delete(
    '/projects/:project/instances/:id',
    { schema: { params: { type: 'object', properties: { project: projectParam, id: { type: 'string' } }, required: ['project', 'id'] } } },
    async (request, reply) => {
      const { project, id } = request.params as { project: string; id: string };
      const deleted = await mixin.transaction((tx) =>
        tx.run('DELETE FROM instances WHERE project_id = ? AND id = ?', [project, id]),
      );
      if (deleted === 0) {
        return reply.code(404).type('application/problem+json').send(problem(404, 'not-found', `instance ${id} does not exist`));
      }
      return reply.code(204).send();
    },
  );

  app.get(
    '/projects/:project/instances',
    { schema: { params: { type: 'object', properties: { project: projectParam }, required: ['project'] } } },
    async (request) => {
      const { project } = request.params as { project: string };
      const rows = await store.transaction(
        (tx) => tx.all<InstanceRow>('SELECT * FROM instances WHERE project_id = ? ORDER BY created_at, id', [project]),
        { readOnly: true },
      );
      return { items: rows.map(instanceOf) };
    },
  );

  app.get('/healthz', async () => ({ status: 'ok', region: options.region }));
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send(problem(404, 'not-found', `no route for ${request.method} ${request.url}`)),
  );
  return { app, mixin };
}
