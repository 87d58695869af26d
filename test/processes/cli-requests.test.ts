// Goal: `allot quota request` files a request and says how it stands; with --wait, and
// `allot quota request wait`, it waits for the outcome decided elsewhere (another process) and
// exits 0 approved, 1 denied, 3 still pending when the time ran out; refusals name their code.
// Method: per engine, one database prepared through the library; `allot` runs as a child
// process; approvals and denials are made through a ledger of this test process meanwhile.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/index.js';
import { allot } from '../support/cli.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { waitFor } from '../support/wait.js';

describe.each(engines)('allot quota request on %s', (engine) => {
  let database: TestDatabase;
  let ledger: Ledger;
  const run = (...args: string[]) => allot(...args, '--db', database.url);
  const ask = (kind: string, preferred: string, ...extra: string[]) =>
    run('quota', 'request', 'acme', '--kind', kind, '--preferred', preferred, '--justification', 'more runs', '--contact', 'ml@example.com', ...extra);
  const pendingOf = async (kind: string) =>
    waitFor(`a pending ${kind} request`, async () => (await ledger.listQuotaRequests('acme', { state: 'pending' })).items.find((r) => r.kind === kind));

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    ledger = await openLedger({ db: database.url });
    for (const kind of ['gpus', 'ips', 'disks']) await ledger.putKind(kind, { displayName: kind });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 10 }, { kind: 'ips', quantity: 10 }, { kind: 'disks', quantity: 10 }]);
  });

  afterAll(async () => {
    await ledger.close();
    await database.drop();
  });

  it('files a request, waits for its approval made by another process, and exits 0', async () => {
    const filed = await ask('gpus', '20');
    expect(filed).toMatchObject({ code: 0, stderr: '' });
    expect(filed.stdout).toMatch(/^request \S+ pending \(acme gpus quota 10 → 20\)\n$/);
    const { id } = await pendingOf('gpus');
    const waiting = run('quota', 'request', 'wait', 'acme', id, '--timeout', '60s');
    await ledger.approveQuotaRequest('acme', id, { granted: 15 });
    const waited = await waiting;
    expect(waited, waited.stderr).toMatchObject({ code: 0 });
    expect(waited.stdout).toBe(`request ${id} approved (acme gpus quota 10 → 20, granted 15, by system)\n`);
  });

  it('with --wait: exits 1 when denied, 3 when still pending at the end', async () => {
    const asking = ask('ips', '30', '--wait', '60s');
    const { id } = await pendingOf('ips');
    await ledger.denyQuotaRequest('acme', id, 'not this quarter');
    const denied = await asking;
    expect(denied.code).toBe(1);
    expect(denied.stdout).toContain(`request ${id} denied (acme ips quota 10 → 30): not this quarter`);
    const pending = await ask('disks', '30', '--wait', '1s');
    expect(pending.code).toBe(3);
    expect(pending.stdout).toMatch(/pending/);
  });

  // What the command prints for a refusal is the engine's alike: on the first engine only.
  const itOnce: typeof it = engine === engines[0] ? it : (() => undefined) as unknown as typeof it;
  itOnce('refuses with the code: a second open request, a project request without its field', async () => {
    const second = await ask('disks', '40');
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^allot: quota-request-open: /);
    const noField = await ask('gpus', '5', '--project', 'web');
    expect(noField.code).toBe(1);
    expect(noField.stderr).toMatch(/--project and --field/);
  });
});
