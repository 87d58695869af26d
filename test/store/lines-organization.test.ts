// Goal: migration 10 gives allocation lines and the identity API's metadata their
// organization: rows written before it get it from their allocation, and the books read the
// same after it (lines, metadata, recount), on both engines.
// Method: a ledger with allocations of two organizations (one through the identity API, with
// metadata), then the database put back to before migration 10 (its columns dropped, its row
// in schema_migrations deleted), then the migrations run again and the rows and reads checked.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { migrate, migrations } from '../../src/store/migrations.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';

describe.each(engines)('migration 10 on %s', (engine) => {
  let test: TestLedger;
  afterAll(() => test?.close());

  it('fills the organization of lines and metadata written before it', async () => {
    test = await openTestLedger(engine);
    const { ledger } = test;
    const adminToken = 'migration-admin-token-for-the-tests';
    const app = await buildApp({ ledger, adminToken });
    const auth = { authorization: `Bearer ${adminToken}` };
    const [tenant, project] = [randomUUID(), randomUUID()];
    await ledger.putKind('gpu', { displayName: 'GPUs' });
    for (const organization of ['acme', tenant]) {
      await ledger.putOrganization(organization, {});
      await ledger.setQuotas(organization, [{ kind: 'gpu', quantity: 10 }]);
    }
    await ledger.putProject('acme', 'web', {});
    await ledger.putProject(tenant, project, {});
    const made = await ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: 'vm-1' }, allocations: [{ kind: 'gpu', committed: 2, reserved: 1 }] });
    const compat = await app.inject({
      method: 'POST',
      url: `/api/v1/organizations/${tenant}/projects/${project}/allocations`,
      headers: auth,
      payload: { metadata: { name: 'compat-vm' }, spec: { kind: 'vm', id: 'vm-2', allocations: [{ kind: 'gpu', committed: 1, reserved: 0 }] } },
    });
    expect(compat.statusCode, compat.body).toBe(201);
    const compatId = compat.json().metadata.id as string;

    // Back to before migration 10.
    await ledger.store.transaction(async (tx) => {
      await tx.run('ALTER TABLE allocation_lines DROP COLUMN organization_id');
      await tx.run('ALTER TABLE compat_allocation_metadata DROP COLUMN organization_id');
      await tx.run('DELETE FROM schema_migrations WHERE version = 10');
    });
    expect(await migrate(ledger.store, Date.now())).toEqual([10]);
    expect(migrations.map((migration) => migration.version)).toContain(10);

    const lines = await ledger.store.transaction((tx) => tx.all<{ allocation_id: string; organization_id: string }>('SELECT allocation_id, organization_id FROM allocation_lines ORDER BY allocation_id'));
    expect(Object.fromEntries(lines.map((row) => [row.allocation_id, row.organization_id]))).toEqual({ [made.id]: 'acme', [compatId]: tenant });
    const metadata = await ledger.store.transaction((tx) => tx.all<{ organization_id: string }>('SELECT organization_id FROM compat_allocation_metadata'));
    expect(metadata).toEqual([{ organization_id: tenant }]);
    expect((await ledger.getAllocation('acme', 'web', made.id)).allocations).toEqual([{ kind: 'gpu', committed: 2, reserved: 1 }]);
    expect(await ledger.getAllocationMetadata(tenant, compatId)).toMatchObject({ name: 'compat-vm' });
    expect(await ledger.verifyCounters()).toEqual([]);
    await app.close();
  });
});
