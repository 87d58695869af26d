// Goal: project quotas are kept by the database, not by a process: with several server
// processes on one database, no project takes another project's guarantee, the organization
// never goes over its quota, and a project deleted with cascade gives its guarantee back.
// Method: two `allot serve` processes on the same database (a PostgreSQL schema, and a SQLite
// file, where the processes share SQLite's file lock). Many projects race over HTTP, spread
// over both processes, for the last units while one project holds a guarantee; the counts of
// 201s and the numbers in every 409 are exact. Then a cascade deletion of the guaranteed
// project races the others' creates: afterwards the others have exactly the whole quota. A
// ledger opened on the same database recounts and replays the journal: no discrepancy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger } from '../../src/index.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, type ServerProcess } from '../support/server.js';

type Response = { status: number; json: any };

const allocation = (id: string) => ({ resource: { kind: 'server', id }, allocations: [{ kind: 'gpus', committed: 1 }] });

function gpusOf(body: any) {
  return body.quotas.find((quota: { kind: string }) => quota.kind === 'gpus');
}

/** A 409 quota-exceeded with exactly one violation, which it returns. */
function violationOf(response: Response) {
  expect(response.status).toBe(409);
  expect(response.json.type).toBe('/problems/quota-exceeded');
  expect(response.json.violations).toHaveLength(1);
  const [violation] = response.json.violations;
  expect(violation).toMatchObject({ kind: 'gpus', requested: 1 });
  return violation as { kind: string; scope: string; requested: number; used: number; limit: number };
}

describe.each(engines)('project quotas across two server processes on %s', (engine) => {
  let database: TestDatabase;
  let servers: ServerProcess[] = [];
  let urls: [string, string];
  const via = (i: number) => urls[i % 2]!;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    // One first, so the migrations are applied once; then the second (which finds them).
    servers = [await startServer(database.url)];
    servers.push(await startServer(database.url));
    urls = servers.map((server) => server.url) as [string, string];
    expect((await call(urls[0], 'PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: 0 })).status).toBe(201);
  });

  afterAll(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await database?.drop();
  });

  it('never lets 5 racing projects take a 20-unit guarantee, nor the organization pass its quota of 60', async () => {
    const [a, b] = urls;
    const others = ['p1', 'p2', 'p3', 'p4', 'p5'];
    expect((await call(b, 'PUT', '/v1/organizations/acme', { displayName: 'Acme' })).status).toBe(201);
    for (const [i, project] of [...others, 'g'].entries()) {
      expect((await call(via(i), 'PUT', `/v1/organizations/acme/projects/${project}`, {})).status).toBe(201);
    }
    expect((await call(a, 'PUT', '/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: 60 }] })).status).toBe(200);
    const projectQuota = await call(b, 'PUT', '/v1/organizations/acme/projects/g/quotas', { quotas: [{ kind: 'gpus', guaranteed: 20 }] });
    expect(projectQuota.status).toBe(200);
    expect(gpusOf(projectQuota.json)).toMatchObject({ cap: null, guaranteed: 20, used: 0, available: 60 });
    for (let i = 0; i < 5; i += 1) {
      expect((await call(via(i), 'POST', '/v1/organizations/acme/projects/g/allocations', allocation(`g-seed-${i}`))).status).toBe(201);
    }

    // 210 requests: 10 by g (from 5 to 15, within its guarantee), 200 by the others, who may
    // use at most 60 - 20 = 40 together while g uses no more than 20.
    const requests: { project: string; response: Promise<Response> }[] = [];
    for (let i = 0; i < 210; i += 1) {
      const project = i % 21 === 0 ? 'g' : others[i % others.length]!;
      requests.push({
        project,
        response: call(via(i), 'POST', `/v1/organizations/acme/projects/${project}/allocations`, allocation(`r-${i}`)),
      });
    }
    const responses = await Promise.all(requests.map((r) => r.response));
    const guarded = responses.filter((_, i) => requests[i]!.project === 'g');
    const rest = responses.filter((_, i) => requests[i]!.project !== 'g');
    expect(guarded.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(rest.filter((r) => r.status === 201)).toHaveLength(40);
    const denied = rest.filter((r) => r.status !== 201);
    expect(denied).toHaveLength(160);
    for (const response of denied) {
      // The organization had room (at most 55 used): the guarantee refused. The others had
      // 40, so usage equals the quota less what g's guarantee keeps back (60 - (20 - g's use)).
      const violation = violationOf(response);
      expect(violation.scope).toBe('guarantees');
      expect(violation.used).toBe(violation.limit);
      expect(violation.limit).toBeGreaterThanOrEqual(45);
      expect(violation.limit).toBeLessThanOrEqual(55);
    }

    // Both processes see the same books.
    for (const url of urls) {
      expect(gpusOf((await call(url, 'GET', '/v1/organizations/acme/quotas')).json)).toMatchObject({
        quantity: 60,
        used: 55,
        free: 5,
        guaranteed: 20,
        freeForAnyProject: 0,
        overLimit: false,
      });
      expect(gpusOf((await call(url, 'GET', '/v1/organizations/acme/projects/g/quotas')).json)).toMatchObject({
        guaranteed: 20,
        used: 15,
        available: 5,
      });
      for (const project of others) {
        expect(gpusOf((await call(url, 'GET', `/v1/organizations/acme/projects/${project}/quotas`)).json).available).toBe(0);
      }
    }

    // The rest of the guarantee is still g's: its 5 requests pass while 40 of the others race them.
    const late: { project: string; response: Promise<Response> }[] = [];
    for (let i = 0; i < 45; i += 1) {
      const project = i % 9 === 4 ? 'g' : others[i % others.length]!;
      late.push({
        project,
        response: call(via(i), 'POST', `/v1/organizations/acme/projects/${project}/allocations`, allocation(`late-${i}`)),
      });
    }
    const lateResponses = await Promise.all(late.map((r) => r.response));
    expect(lateResponses.filter((_, i) => late[i]!.project === 'g').map((r) => r.status)).toEqual(Array(5).fill(201));
    const lateRest = lateResponses.filter((_, i) => late[i]!.project !== 'g');
    expect(lateRest).toHaveLength(40);
    for (const response of lateRest) {
      const violation = violationOf(response);
      if (violation.scope === 'organization') expect(violation).toMatchObject({ used: 60, limit: 60 });
      else {
        expect(violation.scope).toBe('guarantees');
        expect(violation.used).toBe(violation.limit);
      }
    }
    for (const url of urls) {
      expect(gpusOf((await call(url, 'GET', '/v1/organizations/acme/quotas')).json)).toMatchObject({
        used: 60,
        free: 0,
        freeForAnyProject: 0,
      });
    }
    const listed = await call(a, 'GET', '/v1/organizations/acme/projects/g/allocations?limit=1000');
    expect(listed.json.items).toHaveLength(20);

    const ledger = await openLedger({ db: database.url });
    try {
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });

  it('gives a deleted project’s guarantee to the others exactly once, while they race the deletion', async () => {
    const others = ['q1', 'q2', 'q3', 'q4'];
    expect((await call(urls[0], 'PUT', '/v1/organizations/beta', { displayName: 'Beta' })).status).toBe(201);
    for (const [i, project] of [...others, 'g'].entries()) {
      expect((await call(via(i), 'PUT', `/v1/organizations/beta/projects/${project}`, {})).status).toBe(201);
    }
    expect((await call(urls[1], 'PUT', '/v1/organizations/beta/quotas', { quotas: [{ kind: 'gpus', quantity: 50 }] })).status).toBe(200);
    expect(
      (await call(urls[0], 'PUT', '/v1/organizations/beta/projects/g/quotas', { quotas: [{ kind: 'gpus', guaranteed: 30 }] })).status,
    ).toBe(200);
    for (let i = 0; i < 10; i += 1) {
      expect((await call(via(i), 'POST', '/v1/organizations/beta/projects/g/allocations', allocation(`gs-${i}`))).status).toBe(201);
    }
    for (let i = 0; i < 2; i += 1) {
      const hold = await call(via(i), 'POST', '/v1/organizations/beta/projects/g/holds', { ...allocation(`gh-${i}`), ttlSeconds: 3600 });
      expect(hold.status).toBe(201);
    }

    // Over HTTP a DELETE (no body) overtakes POSTs sent before it, so the race is arranged:
    // 120 creates by the others go out at once, while g sends 18 creates one after another
    // (so g never passes its guarantee of 30: 10 + 2 held + 18) and the cascade deletion of
    // g goes out as soon as g's third create is answered, racing g's fourth and the others'.
    // The others may use 50 - 30 = 20 while g exists, and the whole 50 once it is gone.
    let releaseDeletion!: () => void;
    const deletionDue = new Promise<void>((resolve) => (releaseDeletion = resolve));
    const deletion = deletionDue.then(() => call(via(1), 'DELETE', '/v1/organizations/beta/projects/g?cascade=true'));
    const gChain = (async () => {
      const answered: Response[] = [];
      for (let i = 0; i < 18; i += 1) {
        answered.push(await call(via(i), 'POST', '/v1/organizations/beta/projects/g/allocations', allocation(`g-${i}`)));
        if (i === 2) releaseDeletion();
      }
      return answered;
    })();
    const first = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        call(via(i), 'POST', `/v1/organizations/beta/projects/${others[i % others.length]}/allocations`, allocation(`o-${i}`)),
      ),
    );
    const gResponses = await gChain;
    expect((await deletion).status).toBe(204);
    expect(gResponses).toHaveLength(18);
    // g's creates committed before the deletion, or found the project gone.
    expect(gResponses.slice(0, 3).map((r) => r.status)).toEqual([201, 201, 201]);
    for (const response of gResponses) {
      expect([201, 404]).toContain(response.status);
      if (response.status === 404) expect(response.json.type).toBe('/problems/not-found');
    }
    // Once one was refused as not found, every later one is too.
    const found = gResponses.findIndex((r) => r.status === 404);
    const firstGone = found === -1 ? gResponses.length : found;
    expect(firstGone).toBeGreaterThanOrEqual(3);
    expect(gResponses.slice(firstGone).every((r) => r.status === 404)).toBe(true);
    const gGranted = gResponses.filter((r) => r.status === 201).length;
    const checkDenial = (response: Response) => {
      const violation = violationOf(response);
      if (violation.scope === 'organization') {
        // After the deletion: the others have the whole quota.
        expect(violation).toMatchObject({ used: 50, limit: 50 });
      } else {
        // Before it: the others had their 20, the rest was g's or kept back for g.
        expect(violation.scope).toBe('guarantees');
        expect(violation.used).toBe(violation.limit);
        expect(violation.limit).toBeGreaterThanOrEqual(32);
        expect(violation.limit).toBeLessThanOrEqual(50);
      }
    };
    for (const response of first.filter((r) => r.status !== 201)) checkDenial(response);

    // A second wave, after the deletion: together, the others got exactly the whole quota.
    const second = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        call(via(i), 'POST', `/v1/organizations/beta/projects/${others[i % others.length]}/allocations`, allocation(`w-${i}`)),
      ),
    );
    for (const response of second.filter((r) => r.status !== 201)) {
      expect(violationOf(response)).toMatchObject({ scope: 'organization', used: 50, limit: 50 });
    }
    const granted = [...first, ...second].filter((r) => r.status === 201).length;
    expect(granted).toBe(50);

    for (const url of urls) {
      expect(gpusOf((await call(url, 'GET', '/v1/organizations/beta/quotas')).json)).toMatchObject({
        quantity: 50,
        used: 50,
        guaranteed: 0,
        freeForAnyProject: 0,
      });
      expect((await call(url, 'GET', '/v1/organizations/beta/projects/g')).status).toBe(404);
      expect((await call(url, 'GET', '/v1/organizations/beta/projects/g/quotas')).status).toBe(404);
      const projects = await call(url, 'GET', '/v1/organizations/beta/projects');
      expect(projects.json.items.map((p: { id: string }) => p.id)).toEqual(others);
    }

    const ledger = await openLedger({ db: database.url });
    try {
      // The deletion ended g's seeded allocations, the creates that beat it, and both holds.
      const journal = await ledger.readJournal('beta', 0, 1000);
      const deleted = journal.filter((entry) => entry.action === 'project.deleted');
      expect(deleted).toHaveLength(1);
      expect(deleted[0]!.changes).toEqual({ cascade: true, ended: { allocations: 10 + gGranted, holds: 2 } });
      const live = await ledger.store.transaction(
        (tx) =>
          tx.get<{ n: number }>(
            `SELECT COUNT(*) AS n FROM allocations WHERE organization_id = 'beta' AND project_id = 'g' AND deleted_at IS NULL`,
          ),
        { readOnly: true },
      );
      expect(Number(live!.n)).toBe(0);
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
    } finally {
      await ledger.close();
    }
  });
});
