// Goal: the example host service (examples/instances) keeps every project within its instance
// limit — in one process and with two processes on one database — and hides its admin routes
// from anyone without the admin token.
// Method: in process, `buildInstancesApp` + `app.inject` on each engine: set a limit, create up
// to it (exact 201 bodies), one more (exact 409 limit-exceeded problem), delete, list, 404s;
// every admin route without a token and with a wrong one (404, nothing changed) and with the
// admin token; a tracker corrupted by hand in SQL, repaired by the recount. Then two real
// `examples/instances/server.ts` processes on one database (a PostgreSQL schema, a SQLite file):
// 200 concurrent creates race for a limit of 50, then 30 deletes race 30 creates; the tracker,
// the list and a direct COUNT(*) of the host's table agree.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildInstancesApp } from '../app.js';
import { openStore, type LimitsMixin } from '../../../src/limits/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../../../test/support/engines.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const adminToken = 'instances-admin-token';
const admin = { authorization: `Bearer ${adminToken}` };
const region = 'eu-1';
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const problemType = 'application/problem+json';

interface Answer {
  status: number;
  contentType: string;
  json: any;
}

/** The tracker members of an answer, timestamps checked for shape. */
const tracker = (project: string, limit: number, used: number, generation: number) => ({
  region,
  project,
  resourceType: 'instances',
  limit,
  used,
  generation,
  createdAt: expect.stringMatching(isoTimestamp),
  updatedAt: expect.stringMatching(isoTimestamp),
  recountedAt: expect.stringMatching(isoTimestamp),
});

/** What any caller sees: refused at the limit, without the tracker's numbers. */
const limitExceeded = (project: string) => ({
  type: '/problems/limit-exceeded',
  title: 'limit-exceeded',
  status: 409,
  detail: `project ${project} has reached its limit of instances in this region`,
  resourceType: 'instances',
  project,
});

/** What the admin sees: the numbers too. */
const limitExceededForAdmin = (project: string, limit: number, used: number, requested = 1) => ({
  ...limitExceeded(project),
  detail: `limit exceeded for instances in project ${project} (region ${region}): ${used} used + ${requested} requested > ${limit}`,
  limit,
  used,
  requested,
});

/** A direct COUNT(*) of the host's rows, through a connection of the test's own. */
async function countRows(url: string, project?: string): Promise<number> {
  const store = openStore(url);
  try {
    const row = await store.transaction(
      (tx) =>
        project === undefined
          ? tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM instances')
          : tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM instances WHERE project_id = ?', [project]),
      { readOnly: true },
    );
    return Number(row!.n);
  } finally {
    await store.close();
  }
}

describe.each(engines)('instances host in process on %s', (engine) => {
  let database: TestDatabase;
  let app: FastifyInstance;
  let mixin: LimitsMixin;

  beforeEach(async () => {
    database = await createTestDatabase(engine);
    ({ app, mixin } = await buildInstancesApp({ db: database.url, region, adminToken }));
  });

  afterEach(async () => {
    await app.close();
    await database.drop();
  });

  async function send(method: HTTPMethods, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const response = await app.inject({ method, url, headers, ...(body === undefined ? {} : { payload: body as object }) });
    return {
      status: response.statusCode,
      contentType: String(response.headers['content-type'] ?? ''),
      json: response.body === '' ? undefined : JSON.parse(response.body),
    };
  }

  const setLimit = (project: string, limit: number) => send('PUT', `/admin/limits/${project}/instances`, { limit }, admin);
  const create = (project: string, name: string) => send('POST', `/projects/${project}/instances`, { name });
  const createAsAdmin = (project: string, name: string) => send('POST', `/projects/${project}/instances`, { name }, admin);
  const list = async (project: string) => {
    const answer = await send('GET', `/projects/${project}/instances`);
    expect(answer.status).toBe(200);
    return answer.json.items as Array<{ id: string; project: string; name: string; createdAt: string }>;
  };
  const trackerOf = async (project: string) => {
    const answer = await send('GET', `/admin/trackers/${project}/instances`, undefined, admin);
    expect(answer.status).toBe(200);
    return answer.json;
  };
  const byId = <T extends { id: string }>(items: T[]) => [...items].sort((a, b) => a.id.localeCompare(b.id));

  it('creates up to the limit, refuses one more with a problem, and frees a slot on delete', async () => {
    const put = await setLimit('p1', 3);
    expect(put.status).toBe(200);
    expect(put.json).toEqual(tracker('p1', 3, 0, 1));

    const created = [];
    for (const name of ['vm-1', 'vm-2', 'vm-3']) {
      const before = Date.now();
      const answer = await create('p1', name);
      const after = Date.now();
      expect(answer.status).toBe(201);
      expect(answer.json).toStrictEqual({ id: expect.stringMatching(uuid), project: 'p1', name, createdAt: expect.stringMatching(isoTimestamp) });
      const at = Date.parse(answer.json.createdAt);
      expect(at).toBeGreaterThanOrEqual(before);
      expect(at).toBeLessThanOrEqual(after);
      created.push(answer.json);
    }
    expect(new Set(created.map((instance) => instance.id)).size).toBe(3);
    expect(await trackerOf('p1')).toEqual(tracker('p1', 3, 3, 1));

    // One more: refused, and nothing of it is left (the host's row rolled back with it).
    const refused = await create('p1', 'vm-4');
    expect(refused.status).toBe(409);
    expect(refused.contentType).toContain(problemType);
    expect(refused.json).toStrictEqual(limitExceeded('p1'));
    // The admin of the host sees the tracker's numbers; nobody else does.
    const refusedForAdmin = await send('POST', '/projects/p1/instances', { name: 'vm-4' }, admin);
    expect(refusedForAdmin.status).toBe(409);
    expect(refusedForAdmin.json).toStrictEqual(limitExceededForAdmin('p1', 3, 3));
    expect(byId(await list('p1'))).toEqual(byId(created));
    expect(await countRows(database.url, 'p1')).toBe(3);
    expect((await trackerOf('p1')).used).toBe(3);

    // A delete frees exactly one slot.
    const deleted = await send('DELETE', `/projects/p1/instances/${created[1].id}`);
    expect(deleted.status).toBe(204);
    expect(deleted.json).toBeUndefined();
    expect((await trackerOf('p1')).used).toBe(2);
    expect(byId(await list('p1'))).toEqual(byId([created[0], created[2]]));

    const again = await create('p1', 'vm-5');
    expect(again.status).toBe(201);
    expect(again.json).toStrictEqual({ id: expect.stringMatching(uuid), project: 'p1', name: 'vm-5', createdAt: expect.stringMatching(isoTimestamp) });
    expect(byId(await list('p1'))).toEqual(byId([created[0], created[2], again.json]));
    const full = await create('p1', 'vm-6');
    expect(full.status).toBe(409);
    expect(full.json).toStrictEqual(limitExceeded('p1'));
    expect(await trackerOf('p1')).toEqual(tracker('p1', 3, 3, 1));
    expect(await countRows(database.url, 'p1')).toBe(3);
  });

  it('answers 404 for an unknown instance and for one of another project, changing nothing', async () => {
    expect((await setLimit('p1', 5)).status).toBe(200);
    expect((await setLimit('p2', 5)).status).toBe(200);
    const mine = (await create('p1', 'vm-1')).json;

    const unknown = await send('DELETE', '/projects/p1/instances/00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
    expect(unknown.contentType).toContain(problemType);
    expect(unknown.json).toMatchObject({ type: '/problems/not-found', status: 404 });

    // The id exists, but in p1: deleting it through p2 finds nothing.
    const elsewhere = await send('DELETE', `/projects/p2/instances/${mine.id}`);
    expect(elsewhere.status).toBe(404);
    expect(elsewhere.json).toMatchObject({ type: '/problems/not-found', status: 404 });

    expect(await list('p1')).toEqual([mine]);
    expect(await list('p2')).toEqual([]);
    expect((await trackerOf('p1')).used).toBe(1);
    expect((await trackerOf('p2')).used).toBe(0);

    // Deleting twice: the second one is 404 and the tracker is not moved again.
    expect((await send('DELETE', `/projects/p1/instances/${mine.id}`)).status).toBe(204);
    expect((await send('DELETE', `/projects/p1/instances/${mine.id}`)).status).toBe(404);
    expect((await trackerOf('p1')).used).toBe(0);
  });

  it('refuses every create in a project that has no tracker', async () => {
    expect((await setLimit('p1', 5)).status).toBe(200);
    const refused = await create('other', 'vm-1');
    expect(refused.status).toBe(409);
    expect(refused.contentType).toContain(problemType);
    expect(refused.json).toStrictEqual({
      type: '/problems/limit-exceeded',
      title: 'limit-exceeded',
      status: 409,
      detail: 'project other has no capacity for instances in this region',
      resourceType: 'instances',
      project: 'other',
    });
    expect(await list('other')).toEqual([]);
    expect(await countRows(database.url)).toBe(0);
    expect((await send('GET', '/admin/trackers/other/instances', undefined, admin)).status).toBe(404);

    // A tracker removed by DELETE /admin/limits closes the project again.
    expect((await create('p1', 'vm-1')).status).toBe(201);
    const removed = await send('DELETE', '/admin/limits/p1/instances', undefined, admin);
    expect(removed.status).toBe(204);
    const closed = await createAsAdmin('p1', 'vm-2');
    expect(closed.status).toBe(409);
    expect(closed.json).toMatchObject({ type: '/problems/limit-exceeded', project: 'p1', limit: 0, used: 0, requested: 1 });
    expect(await countRows(database.url, 'p1')).toBe(1);
  });

  describe('admin routes', () => {
    const adminRoutes: Array<{ method: HTTPMethods; url: string; body?: unknown }> = [
      { method: 'GET', url: '/admin/trackers' },
      { method: 'GET', url: '/admin/trackers?project=p1' },
      { method: 'GET', url: '/admin/trackers/p1/instances' },
      { method: 'GET', url: '/admin/trackers/journal' },
      { method: 'POST', url: '/admin/trackers/recount' },
      { method: 'POST', url: '/admin/trackers/recount', body: { project: 'p1' } },
      { method: 'PUT', url: '/admin/limits/p1/instances', body: { limit: 99 } },
      { method: 'PUT', url: '/admin/limits/p9/instances', body: { limit: 99 } },
      { method: 'DELETE', url: '/admin/limits/p1/instances' },
    ];
    const strangers: Array<[string, Record<string, string>]> = [
      ['no token', {}],
      ['a wrong token', { authorization: 'Bearer not-the-admin-token' }],
      ['the admin token with a suffix', { authorization: `Bearer ${adminToken}x` }],
      ['the admin token without Bearer', { authorization: adminToken }],
      ['another scheme', { authorization: `Basic ${adminToken}` }],
    ];

    it('answer 404 to anyone without the admin token, and change nothing', async () => {
      expect((await setLimit('p1', 2)).status).toBe(200);
      expect((await create('p1', 'vm-1')).status).toBe(201);
      const before = await trackerOf('p1');

      for (const [who, headers] of strangers) {
        for (const route of adminRoutes) {
          const answer = await send(route.method, route.url, route.body, headers);
          expect({ who, ...route, status: answer.status }).toEqual({ who, ...route, status: 404 });
          expect(answer.contentType).toContain(problemType);
          expect(answer.json).toMatchObject({ type: '/problems/not-found', status: 404 });
          // Nothing about trackers leaks in the refusal.
          expect(JSON.stringify(answer.json)).not.toMatch(/"(limit|used|items|drifts)"/);
        }
      }

      // The limit was neither raised nor removed, no tracker was made for p9.
      expect(await trackerOf('p1')).toEqual(before);
      expect((await send('GET', '/admin/trackers', undefined, admin)).json).toEqual({ drifts: 0, items: [tracker('p1', 2, 1, 1)] });
      const journal = await send('GET', '/admin/trackers/journal', undefined, admin);
      expect(journal.json.items.map((entry: { action: string; project: string }) => [entry.action, entry.project])).toEqual([
        ['limit.set', 'p1'],
      ]);
      expect((await create('p1', 'vm-2')).status).toBe(201);
      expect((await create('p1', 'vm-3')).status).toBe(409);
      expect((await create('p9', 'vm-1')).status).toBe(409);
    });

    it('work with the admin token', async () => {
      const first = await send('PUT', '/admin/limits/p1/instances', { limit: 2 }, admin);
      expect(first.status).toBe(200);
      expect(first.json).toEqual(tracker('p1', 2, 0, 1));
      expect((await setLimit('p2', 7)).json).toEqual(tracker('p2', 7, 0, 1));
      expect((await create('p1', 'vm-1')).status).toBe(201);

      const all = await send('GET', '/admin/trackers', undefined, admin);
      expect(all.status).toBe(200);
      expect(all.json).toEqual({ drifts: 0, items: [tracker('p1', 2, 1, 1), tracker('p2', 7, 0, 1)] });
      const filtered = await send('GET', '/admin/trackers?project=p2', undefined, admin);
      expect(filtered.json).toEqual({ drifts: 0, items: [tracker('p2', 7, 0, 1)] });

      const one = await send('GET', '/admin/trackers/p1/instances', undefined, admin);
      expect(one.status).toBe(200);
      expect(one.json).toEqual(tracker('p1', 2, 1, 1));
      const missing = await send('GET', '/admin/trackers/p3/instances', undefined, admin);
      expect(missing.status).toBe(404);
      expect(missing.json).toMatchObject({ type: '/problems/not-found', status: 404 });

      const recountAll = await send('POST', '/admin/trackers/recount', undefined, admin);
      expect(recountAll.status).toBe(200);
      expect(recountAll.json).toEqual({ drifts: [], leftovers: [] });
      const recountOne = await send('POST', '/admin/trackers/recount', { project: 'p1' }, admin);
      expect(recountOne.status).toBe(200);
      expect(recountOne.json).toEqual({ drifts: [], leftovers: [] });

      // Raising the limit: generation + 1, used recounted, and a create passes again.
      const raised = await send('PUT', '/admin/limits/p1/instances', { limit: 3 }, admin);
      expect(raised.status).toBe(200);
      expect(raised.json).toEqual(tracker('p1', 3, 1, 2));
      expect((await create('p1', 'vm-2')).status).toBe(201);
      expect((await create('p1', 'vm-3')).status).toBe(201);
      expect((await createAsAdmin('p1', 'vm-4')).json).toStrictEqual(limitExceededForAdmin('p1', 3, 3));

      // Lowering it below use is accepted: only deletes pass until the project is under it.
      const lowered = await setLimit('p1', 1);
      expect(lowered.json).toEqual(tracker('p1', 1, 3, 3));
      expect((await createAsAdmin('p1', 'vm-5')).json).toStrictEqual(limitExceededForAdmin('p1', 1, 3));
      const items = await list('p1');
      expect(items).toHaveLength(3);
      expect((await send('DELETE', `/projects/p1/instances/${items[0]!.id}`)).status).toBe(204);
      expect((await trackerOf('p1')).used).toBe(2);

      const journal = await send('GET', '/admin/trackers/journal?project=p1', undefined, admin);
      expect(journal.status).toBe(200);
      expect(journal.json.items.map((entry: { action: string; detail: unknown }) => [entry.action, entry.detail])).toEqual([
        ['limit.set', { before: null, after: 2 }],
        ['limit.set', { before: 2, after: 3 }],
        ['limit.set', { before: 3, after: 1 }],
      ]);

      const removed = await send('DELETE', '/admin/limits/p2/instances', undefined, admin);
      expect(removed.status).toBe(204);
      expect((await send('DELETE', '/admin/limits/p2/instances', undefined, admin)).status).toBe(404);
      expect((await send('GET', '/admin/trackers', undefined, admin)).json).toMatchObject({ items: [tracker('p1', 1, 2, 3)] });
    });
  });

  it('repairs a tracker corrupted by hand with the recount, after which creates obey the limit again', async () => {
    expect((await setLimit('p1', 3)).status).toBe(200);
    expect((await setLimit('p2', 3)).status).toBe(200);
    for (const name of ['vm-1', 'vm-2', 'vm-3']) expect((await create('p1', name)).status).toBe(201);
    expect((await create('p2', 'vm-1')).status).toBe(201);

    // By hand, beside the mixin: the tracker forgets two of p1's instances.
    const store = openStore(database.url);
    try {
      const changed = await store.transaction((tx) =>
        tx.run("UPDATE allot_limit_trackers SET used = 1 WHERE project = 'p1' AND resource_type = 'instances'"),
      );
      expect(changed).toBe(1);
    } finally {
      await store.close();
    }
    expect((await trackerOf('p1')).used).toBe(1);

    // The drift is real: the corrupted tracker lets a fourth instance through.
    expect((await create('p1', 'vm-4')).status).toBe(201);
    expect(await countRows(database.url, 'p1')).toBe(4);
    expect((await trackerOf('p1')).used).toBe(2);

    // A recount without the token repairs nothing.
    expect((await send('POST', '/admin/trackers/recount', undefined, { authorization: 'Bearer nope' })).status).toBe(404);
    expect((await trackerOf('p1')).used).toBe(2);

    const recount = await send('POST', '/admin/trackers/recount', undefined, admin);
    expect(recount.status).toBe(200);
    expect(recount.json).toEqual({ drifts: [{ region, project: 'p1', resourceType: 'instances', stored: 2, actual: 4 }], leftovers: [] });
    expect(await trackerOf('p1')).toEqual(tracker('p1', 3, 4, 1));
    expect(await trackerOf('p2')).toEqual(tracker('p2', 3, 1, 1));
    expect((await send('POST', '/admin/trackers/recount', undefined, admin)).json).toEqual({ drifts: [], leftovers: [] });

    const journal = await send('GET', '/admin/trackers/journal?project=p1', undefined, admin);
    expect(journal.json.items.filter((entry: { action: string }) => entry.action === 'recount.drift')).toEqual([
      {
        at: expect.stringMatching(isoTimestamp),
        region,
        project: 'p1',
        resourceType: 'instances',
        action: 'recount.drift',
        detail: { stored: 2, actual: 4 },
      },
    ]);

    // Over its limit now: creates are refused until enough is deleted.
    expect((await createAsAdmin('p1', 'vm-5')).json).toStrictEqual(limitExceededForAdmin('p1', 3, 4));
    const items = await list('p1');
    expect(items).toHaveLength(4);
    expect((await send('DELETE', `/projects/p1/instances/${items[0]!.id}`)).status).toBe(204);
    expect((await createAsAdmin('p1', 'vm-6')).json).toStrictEqual(limitExceededForAdmin('p1', 3, 3));
    expect((await send('DELETE', `/projects/p1/instances/${items[1]!.id}`)).status).toBe(204);
    expect((await create('p1', 'vm-7')).status).toBe(201);
    expect((await createAsAdmin('p1', 'vm-8')).json).toStrictEqual(limitExceededForAdmin('p1', 3, 3));
    expect(await countRows(database.url, 'p1')).toBe(3);
    expect(await trackerOf('p1')).toEqual(tracker('p1', 3, 3, 1));

    // A scoped recount of a corrupted p2 reports only p2.
    const again = openStore(database.url);
    try {
      await again.transaction((tx) => tx.run("UPDATE allot_limit_trackers SET used = 3 WHERE project IN ('p1', 'p2')"));
    } finally {
      await again.close();
    }
    const scoped = await send('POST', '/admin/trackers/recount', { project: 'p2' }, admin);
    expect(scoped.json).toEqual({ drifts: [{ region, project: 'p2', resourceType: 'instances', stored: 3, actual: 1 }], leftovers: [] });
    expect((await trackerOf('p2')).used).toBe(1);
    expect((await create('p2', 'vm-2')).status).toBe(201);
    expect((await create('p2', 'vm-3')).status).toBe(201);
    expect((await createAsAdmin('p2', 'vm-4')).json).toStrictEqual(limitExceededForAdmin('p2', 3, 3));
  });

  it('counts writes to the instances table made outside the mixin, and refuses them past the limit', async () => {
    expect((await setLimit('p1', 1)).status).toBe(200);
    const store = openStore(database.url);
    const insert = (id: string) =>
      store.transaction((tx) =>
        tx.run("INSERT INTO instances (id, project_id, name, created_at) VALUES (?, 'p1', 'plain', 0)", [id]),
      );
    try {
      await insert('x');
      await expect(insert('y')).rejects.toThrow(/allot-limit-exceeded/);
    } finally {
      await store.close();
    }
    expect((await list('p1')).map((instance) => instance.id)).toEqual(['x']);
    expect((await trackerOf('p1')).used).toBe(1);
  });
});

interface HostProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * `npx tsx examples/instances/server.ts` in its own process group (npx → tsx → node), so
 * stopping it reaches every process it started.
 */
async function startHost(db: string): Promise<HostProcess> {
  const child = spawn('npx', ['tsx', 'examples/instances/server.ts', '--port', '0', '--db', db, '--region', region], {
    cwd: root,
    env: { ...process.env, ALLOT_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid!;
  const stop = async () => {
    if (!groupAlive(pid)) return;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return;
    }
    const deadline = Date.now() + 5_000;
    while (groupAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (groupAlive(pid)) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // gone in between
      }
    }
  };
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(() => reject(new Error(`instances host did not start: ${stderr}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = new RegExp(`instances \\(${region}\\) listening on (http://\\S+)`).exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`instances host exited with ${code}: ${stderr}`));
      });
    });
    return { url, child, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function call(baseUrl: string, method: string, path: string, body?: unknown, asAdmin = false): Promise<Answer> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...(asAdmin ? admin : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', json: text ? JSON.parse(text) : undefined };
}

describe.each(engines)('two instances host processes on one %s database', (engine) => {
  let database: TestDatabase;
  const hosts: HostProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    // One first, so the host's table and the mixin's migrations are made once; then the second.
    hosts.push(await startHost(database.url));
    hosts.push(await startHost(database.url));
  });

  afterAll(async () => {
    await Promise.all(hosts.map((host) => host.stop()));
    for (const host of hosts) expect(groupAlive(host.child.pid!)).toBe(false);
    await database?.drop();
  });

  it('grant exactly 50 of 200 racing creates, then keep the tracker equal to the rows while deletes race creates', async () => {
    const [a, b] = hosts.map((host) => host.url) as [string, string];
    expect(a).not.toBe(b);
    const put = await call(a, 'PUT', '/admin/limits/p1/instances', { limit: 50 }, true);
    expect(put.status).toBe(200);
    expect(put.json).toEqual(tracker('p1', 50, 0, 1));
    // The other process sees the same tracker.
    expect((await call(b, 'GET', '/admin/trackers/p1/instances', undefined, true)).json).toEqual(tracker('p1', 50, 0, 1));

    const creates = await Promise.all(
      Array.from({ length: 200 }, (_, i) => call(i % 2 === 0 ? a : b, 'POST', '/projects/p1/instances', { name: `vm-${i}` })),
    );
    const statuses = creates.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(50);
    expect(statuses.filter((status) => status === 409)).toHaveLength(150);
    for (const answer of creates) {
      if (answer.status === 201) {
        expect(answer.json).toStrictEqual({
          id: expect.stringMatching(uuid),
          project: 'p1',
          name: expect.stringMatching(/^vm-\d+$/),
          createdAt: expect.stringMatching(isoTimestamp),
        });
      } else {
        expect(answer.contentType).toContain(problemType);
        expect(answer.json).toStrictEqual(limitExceeded('p1'));
      }
    }
    const granted = creates.filter((answer) => answer.status === 201).map((answer) => answer.json);
    for (const url of [a, b]) {
      const listed = await call(url, 'GET', '/projects/p1/instances');
      expect(listed.status).toBe(200);
      expect(listed.json.items).toHaveLength(50);
      const sortById = (items: Array<{ id: string }>) => [...items].sort((x, y) => x.id.localeCompare(y.id));
      expect(sortById(listed.json.items)).toEqual(sortById(granted));
      const trackers = await call(url, 'GET', '/admin/trackers', undefined, true);
      expect(trackers.json).toEqual({ drifts: 0, items: [tracker('p1', 50, 50, 1)] });
    }
    expect(await countRows(database.url)).toBe(50);

    // 30 deletes race 30 creates, over both processes.
    const victims = granted.slice(0, 30).map((instance) => instance.id as string);
    const raced = await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const url = i % 4 < 2 ? a : b;
        return i % 2 === 0
          ? call(url, 'DELETE', `/projects/p1/instances/${victims[i / 2]}`).then((answer) => ({ kind: 'delete', ...answer }))
          : call(url, 'POST', '/projects/p1/instances', { name: `late-${i}` }).then((answer) => ({ kind: 'create', ...answer }));
      }),
    );
    const deletes = raced.filter((answer) => answer.kind === 'delete');
    const lateCreates = raced.filter((answer) => answer.kind === 'create');
    expect(deletes.map((answer) => answer.status)).toEqual(Array(30).fill(204));
    for (const answer of lateCreates) {
      expect([201, 409]).toContain(answer.status);
      // Refused at the limit; the numbers are the host admin's to see, not this caller's.
      if (answer.status === 409) expect(answer.json).toStrictEqual(limitExceeded('p1'));
    }
    const lateGranted = lateCreates.filter((answer) => answer.status === 201).length;

    const rows = await countRows(database.url);
    expect(rows).toBe(20 + lateGranted);
    expect(rows).toBeLessThanOrEqual(50);
    for (const url of [a, b]) {
      const trackers = await call(url, 'GET', '/admin/trackers', undefined, true);
      expect(trackers.json).toEqual({ drifts: 0, items: [tracker('p1', 50, rows, 1)] });
      expect((await call(url, 'GET', '/projects/p1/instances')).json.items).toHaveLength(rows);
    }
    // No drift for a recount to find.
    expect((await call(b, 'POST', '/admin/trackers/recount', undefined, true)).json).toEqual({ drifts: [], leftovers: [] });
  });
});
