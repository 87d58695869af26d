// Goal: a kind's policy approves at most N requests per organization and period even when the
// requests arrive at once at two server processes: the count is kept in the database, under a
// lock, not in a process's memory.
// Method: per engine, two real `allot serve` processes on one database; an org-admin's token
// (which may ask for, not set, the organization's quota) files 10 increases at once, split
// between the servers; the answers and the journal are read back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { call, startServer, type ServerProcess } from '../support/server.js';

const perPeriod = 3;

describe.each(engines)('policy approvals across two servers on %s', (engine) => {
  let database: TestDatabase;
  const servers: ServerProcess[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    servers.push(await startServer(database.url), await startServer(database.url));
  });
  afterAll(async () => {
    for (const server of servers) await server.stop();
    await database?.drop();
  });

  it(`approves at most ${perPeriod} per period, however the requests are spread`, async () => {
    const [first, second] = servers as [ServerProcess, ServerProcess];
    const put = async (path: string, body: unknown) => expect((await call(first.url, 'PUT', path, body)).status).toBeLessThan(300);
    await put('/v1/resource-kinds/gpus', { displayName: 'GPUs' });
    await put('/v1/organizations/acme', {});
    await put('/v1/organizations/acme/quotas', { quotas: [{ kind: 'gpus', quantity: 100 }] });
    await put('/v1/resource-kinds/gpus/request-policy', { autoApprove: { maxIncrease: 100_000, perPeriod, periodSeconds: 3600 } });
    const token = (await call(first.url, 'POST', '/v1/tokens', { role: 'org-admin', organization: 'acme' })).json.token as string;
    const file = async (server: ServerProcess, preferred: number) => {
      const response = await fetch(`${server.url}/v1/organizations/acme/quota-requests`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'gpus', scope: 'organization', preferred, justification: 'burst', contact: 'ops@example.com' }),
      });
      return { status: response.status, body: (await response.json()) as { decidedBy?: string; type?: string } };
    };
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => file(i % 2 === 0 ? first : second, 1000 + i)));
    for (const answer of answers) expect([201, 409], JSON.stringify(answer)).toContain(answer.status);
    const byPolicy = answers.filter((answer) => answer.body.decidedBy === 'policy').length;
    expect(byPolicy).toBeGreaterThanOrEqual(1);
    expect(byPolicy).toBeLessThanOrEqual(perPeriod);
    const listed = (await call(second.url, 'GET', '/v1/organizations/acme/quota-requests?limit=100')).json.items as { decidedBy: string | null; granted: number | null }[];
    expect(listed.filter((request) => request.decidedBy === 'policy')).toHaveLength(byPolicy);
    const journal = (await call(second.url, 'GET', '/v1/organizations/acme/journal?limit=1000')).json.items as { action: string }[];
    // The setup's quota change, then one per approval.
    expect(journal.filter((entry) => entry.action === 'quota.set')).toHaveLength(1 + byPolicy);
  });
});
