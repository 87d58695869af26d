// Goal: the allot command shows and sets organizations' quotas and projects' caps and
// guarantees, refuses what the ledger refuses (with `allot: <code>: …` on stderr, exit 1, and
// nothing changed), rejects option combinations that make no sense before touching anything,
// and deletes projects: refused while not empty, with --cascade ending what is there.
// Method: per engine, one database whose kinds, organizations, projects and allocations are
// prepared through the library; `allot` runs as a child process on it (as test/processes/
// cli.test.ts does), each invocation's stdout, stderr and exit code checked at once, and the
// database read back through the library after each refusal to see that nothing moved.
// Numbers: acme's gpus quota is 100; web uses 6+2, batch 4; web gets cap 40 and guarantee 30.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allot } from '../support/cli.js';
import { AllotError, openLedger, type Ledger } from '../../src/index.js';
import { rowOf } from '../support/bodies.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { readAll } from '../support/journal.js';

/** A printed table as rows of cells (the header first). */
const cellsOf = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.trim().split(/\s+/));

describe.each(engines)('allot quota and project commands on %s', (engine) => {
  let database: TestDatabase;
  /** Runs `work` on a ledger opened for it alone, closed before the next CLI run. */
  const withLedger = async <T>(work: (ledger: Ledger) => Promise<T>): Promise<T> => {
    const ledger = await openLedger({ db: database.url });
    try {
      return await work(ledger);
    } finally {
      await ledger.close();
    }
  };
  const run = (...args: string[]) => allot(...args, '--db', database.url);

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    await withLedger(async (ledger) => {
      await ledger.putKind('cpu', { displayName: 'CPU', default: 50 });
      await ledger.putKind('disk', { displayName: 'Disk' });
      await ledger.putKind('gpus', { displayName: 'GPUs' });
      await ledger.putOrganization('acme', {});
      for (const project of ['web', 'batch', 'idle']) await ledger.putProject('acme', project, {});
      await ledger.createAllocation('acme', 'web', {
        resource: { kind: 'server', id: 's1' },
        allocations: [{ kind: 'gpus', committed: 6, reserved: 2 }],
      });
      await ledger.createAllocation('acme', 'batch', {
        resource: { kind: 'server', id: 'b1' },
        allocations: [{ kind: 'gpus', committed: 4, reserved: 0 }],
      });
      // A second organization whose project quota only the bad-options case below touches.
      await ledger.putOrganization('solo', {});
      await ledger.putProject('solo', 'p', {});
      await ledger.setQuotas('solo', [{ kind: 'gpus', quantity: 50 }]);
      await ledger.setProjectQuotaSet('solo', 'p', [{ kind: 'gpus', cap: 10, guaranteed: 5 }]);
    });
  });
  afterAll(async () => {
    await database.drop();
  });

  it('quota set --quantity sets the organization quota; quota show --json shows every kind', async () => {
    const set = await run('quota', 'set', 'acme', '--kind', 'gpus', '--quantity', '100');
    expect(set).toEqual({ code: 0, stdout: 'acme gpus: quota 100 (quota), used 12, guaranteed 0\n', stderr: '' });

    const shown = await run('quota', 'show', 'acme', '--json');
    expect(shown.code).toBe(0);
    expect(shown.stderr).toBe('');
    const body = JSON.parse(shown.stdout);
    expect(body).toMatchObject({ organization: 'acme', generation: 1 });
    expect(body.quotas.map((q: any) => q.kind)).toEqual(['cpu', 'disk', 'gpus']);
    expect(rowOf(body, 'gpus')).toMatchObject({
      quantity: 100,
      source: 'quota',
      used: 12,
      committed: 10,
      reserved: 2,
      held: 0,
      free: 88,
      guaranteed: 0,
      freeForAnyProject: 88,
      overLimit: false,
      updatedBy: 'cli',
    });
    expect(rowOf(body, 'cpu')).toMatchObject({
      quantity: 50,
      source: 'default',
      used: 0,
      free: 50,
      guaranteed: 0,
      freeForAnyProject: 50,
    });
    expect(rowOf(body, 'disk')).toMatchObject({ quantity: null, source: 'unlimited', free: null, freeForAnyProject: null });

    const journal = await withLedger((ledger) => readAll(ledger, 'acme'));
    expect(journal.at(-1)).toMatchObject({ action: 'quota.set', principal: 'cli', project: null });
  });

  it('quota set --project sets a cap and a guarantee; both views show them', async () => {
    const set = await run('quota', 'set', 'acme', '--project', 'web', '--kind', 'gpus', '--cap', '40', '--guaranteed', '30');
    // available: the cap leaves 40 - 8; the organization 100 - 12 (nobody else guarantees).
    expect(set).toEqual({ code: 0, stdout: 'acme/web gpus: cap 40, guaranteed 30, used 8, available 32\n', stderr: '' });
    // A quantity string; a cap above the organization's limit is allowed.
    const cpu = await run('quota', 'set', 'acme', '--project', 'batch', '--kind', 'cpu', '--cap', '2k');
    expect(cpu).toEqual({ code: 0, stdout: 'acme/batch cpu: cap 2000, guaranteed 0, used 0, available 50\n', stderr: '' });

    const web = await run('quota', 'show', 'acme', '--project', 'web', '--json');
    expect(web.code).toBe(0);
    expect(web.stderr).toBe('');
    const body = JSON.parse(web.stdout);
    expect(body).toMatchObject({ organization: 'acme', project: 'web', generation: 1 });
    expect(body.quotas.map((q: any) => q.kind)).toEqual(['cpu', 'disk', 'gpus']);
    expect(rowOf(body, 'gpus')).toEqual({
      kind: 'gpus',
      displayName: 'GPUs',
      format: 'decimal',
      cap: 40,
      guaranteed: 30,
      used: 8,
      committed: 6,
      reserved: 2,
      held: 0,
      available: 32,
      overCap: false,
      updatedBy: 'cli',
    });
    expect(rowOf(body, 'cpu')).toMatchObject({ cap: null, guaranteed: 0, used: 0, available: 50, overCap: false, updatedBy: null });
    expect(rowOf(body, 'disk')).toMatchObject({ cap: null, guaranteed: 0, used: 0, available: null });

    // batch: web's guarantee keeps back 30 - 8 = 22, so 100 - 12 - 22 = 66 is left for it.
    const batch = await run('quota', 'show', 'acme', '--project', 'batch');
    expect(batch.code).toBe(0);
    expect(cellsOf(batch.stdout)).toEqual([
      ['KIND', 'CAP', 'GUARANTEED', 'USED', 'AVAILABLE'],
      ['cpu', '2000', '0', '0', '50'],
      ['disk', '-', '0', '0', '-'],
      ['gpus', '-', '0', '4', '66'],
    ]);

    const organization = await run('quota', 'show', 'acme');
    expect(organization.code).toBe(0);
    expect(cellsOf(organization.stdout)).toEqual([
      ['KIND', 'QUOTA', 'USED', 'GUARANTEED', 'FREE', 'FREE-FOR-ANY-PROJECT'],
      ['cpu', '50', '0', '0', '50', '50'],
      ['disk', '-', '0', '0', '-', '-'],
      ['gpus', '100', '12', '30', '88', '66'],
    ]);

    const journal = await withLedger((ledger) => readAll(ledger, 'acme'));
    expect(journal.slice(-2)).toEqual([
      expect.objectContaining({
        action: 'project-quota.set',
        project: 'web',
        principal: 'cli',
        changes: {
          quotas: [{ kind: 'gpus', before: { cap: null, guaranteed: 0 }, after: { cap: 40, guaranteed: 30 } }],
          force: false,
        },
        deltas: [],
      }),
      expect.objectContaining({ action: 'project-quota.set', project: 'batch', principal: 'cli' }),
    ]);
  });

  it('refuses guarantees above the quota, even with --force, and changes nothing', async () => {
    const before = await withLedger(async (ledger) => ({
      batch: await ledger.getProjectQuotaSet('acme', 'batch'),
      organization: await ledger.getQuotaSet('acme'),
      revisions: (await readAll(ledger, 'acme')).length,
    }));

    // 30 (web) + 71 = 101 > 100.
    const raised = await run('quota', 'set', 'acme', '--project', 'batch', '--kind', 'gpus', '--guaranteed', '71', '--force');
    expect(raised.code).toBe(1);
    expect(raised.stdout).toBe('');
    expect(raised.stderr).toMatch(/^allot: guarantees-exceed-quota: .*\b101\b.*\b100\b/);
    expect(raised.stderr.trimEnd().split('\n')).toHaveLength(1);

    // A quota below the guarantees' sum (30) is refused the same way.
    const cut = await run('quota', 'set', 'acme', '--kind', 'gpus', '--quantity', '29', '--force');
    expect(cut.code).toBe(1);
    expect(cut.stdout).toBe('');
    expect(cut.stderr).toMatch(/^allot: guarantees-exceed-quota: .*\b30\b.*\b29\b/);

    await withLedger(async (ledger) => {
      expect(await ledger.getProjectQuotaSet('acme', 'batch')).toEqual(before.batch);
      expect(await ledger.getQuotaSet('acme')).toEqual(before.organization);
      expect(await readAll(ledger, 'acme')).toHaveLength(before.revisions);
      expect(rowOf(before.organization, 'gpus')).toMatchObject({ quantity: 100, guaranteed: 30 });
    });
  });

  it('refuses a cap below the project usage without --force and sets it with --force', async () => {
    const refused = await run('quota', 'set', 'acme', '--project', 'batch', '--kind', 'gpus', '--cap', '3');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^allot: quota-below-usage: .*\b3\b.*\b4\b/);
    await withLedger(async (ledger) => {
      const batch = await ledger.getProjectQuotaSet('acme', 'batch');
      expect(batch.generation).toBe(1);
      expect(rowOf(batch, 'gpus')).toMatchObject({ cap: null, used: 4 });
    });

    const forced = await run('quota', 'set', 'acme', '--project', 'batch', '--kind', 'gpus', '--cap', '3', '--force');
    expect(forced).toEqual({ code: 0, stdout: 'acme/batch gpus: cap 3, guaranteed 0, used 4, available 0\n', stderr: '' });

    await withLedger(async (ledger) => {
      const batch = await ledger.getProjectQuotaSet('acme', 'batch');
      expect(batch.generation).toBe(2);
      expect(rowOf(batch, 'gpus')).toMatchObject({ cap: 3, used: 4, available: 0, overCap: true });
      // Kinds not named keep their project quota.
      expect(rowOf(batch, 'cpu')).toMatchObject({ cap: 2000 });
      // Over its cap, the project cannot grow.
      const growing = ledger.createAllocation('acme', 'batch', {
        resource: { kind: 'server', id: 'b2' },
        allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
      });
      await expect(growing).rejects.toBeInstanceOf(AllotError);
      await expect(growing).rejects.toMatchObject({
        code: 'quota-exceeded',
        extensions: { violations: [{ kind: 'gpus', scope: 'project', requested: 1, used: 4, limit: 3 }] },
      });
      const journal = await readAll(ledger, 'acme');
      expect(journal.at(-1)).toMatchObject({
        action: 'project-quota.set',
        project: 'batch',
        changes: { quotas: [{ kind: 'gpus', after: { cap: 3, guaranteed: 0 } }], force: true },
      });
    });
  });

  it('rejects option combinations that make no sense, with a clear message, changing nothing', async () => {
    const before = await withLedger(async (ledger) => ({
      web: await ledger.getProjectQuotaSet('acme', 'web'),
      acme: await ledger.getQuotaSet('acme'),
    }));

    const quantityForProject = await run('quota', 'set', 'acme', '--project', 'web', '--kind', 'gpus', '--quantity', '5');
    expect(quantityForProject.code).toBe(1);
    expect(quantityForProject.stdout).toBe('');
    expect(quantityForProject.stderr).toMatch(/^allot: .*--quantity.*--cap/);

    const capWithoutProject = await run('quota', 'set', 'acme', '--kind', 'gpus', '--cap', '5');
    expect(capWithoutProject.code).toBe(1);
    expect(capWithoutProject.stderr).toMatch(/^allot: .*--quantity.*--project/);

    const nothingToSet = await run('quota', 'set', 'acme', '--kind', 'gpus');
    expect(nothingToSet.code).toBe(1);
    expect(nothingToSet.stderr).toMatch(/^allot: .*--quantity/);

    const guaranteeAboveCap = await run('quota', 'set', 'acme', '--project', 'web', '--kind', 'gpus', '--cap', '10', '--guaranteed', '20');
    expect(guaranteeAboveCap.code).toBe(1);
    expect(guaranteeAboveCap.stderr).toMatch(/^allot: invalid-request: /);

    const unknownKind = await run('quota', 'set', 'acme', '--project', 'web', '--kind', 'nope', '--cap', '1');
    expect(unknownKind.code).toBe(1);
    expect(unknownKind.stderr).toMatch(/^allot: invalid-request: .*nope/);

    const noKind = await run('quota', 'set', 'acme', '--project', 'web', '--cap', '1');
    expect(noKind.code).toBe(1);
    expect(noKind.stderr).toMatch(/--kind/);

    await withLedger(async (ledger) => {
      expect(await ledger.getProjectQuotaSet('acme', 'web')).toEqual(before.web);
      expect(await ledger.getQuotaSet('acme')).toEqual(before.acme);
    });
  });

  it('refuses --project with neither --cap nor --guaranteed instead of clearing the project quota', async () => {
    const before = await withLedger((ledger) => ledger.getProjectQuotaSet('solo', 'p'));
    expect(rowOf(before, 'gpus')).toMatchObject({ cap: 10, guaranteed: 5 });
    // Nothing to set was named: this must be refused, not read as "no cap, no guarantee".
    const neither = await run('quota', 'set', 'solo', '--project', 'p', '--kind', 'gpus');
    expect(neither.code, `stdout: ${neither.stdout}`).not.toBe(0);
    expect(neither.stderr).toMatch(/^allot: .*(--cap|--guaranteed)/);
    await withLedger(async (ledger) => {
      expect(await ledger.getProjectQuotaSet('solo', 'p')).toEqual(before);
    });
  });

  it('project delete is refused while the project is not empty; --cascade ends what is there', async () => {
    await withLedger(async (ledger) => {
      await ledger.createAllocation('acme', 'web', {
        resource: { kind: 'server', id: 's2' },
        allocations: [{ kind: 'gpus', committed: 1, reserved: 0 }],
      });
      await ledger.createHold('acme', 'web', {
        resource: { kind: 'server', id: 's3' },
        allocations: [{ kind: 'gpus', committed: 2, reserved: 0 }],
        ttlSeconds: 3600,
      });
    });
    const before = await withLedger(async (ledger) => ({
      web: await ledger.getProjectQuotaSet('acme', 'web'),
      acme: await ledger.getQuotaSet('acme'),
      revisions: (await readAll(ledger, 'acme')).length,
    }));
    expect(rowOf(before.web, 'gpus')).toMatchObject({ used: 11, committed: 7, held: 2, guaranteed: 30 });

    const refused = await run('project', 'delete', 'acme', 'web');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/^allot: project-not-empty: .*\b2\b.*\b1\b/);
    await withLedger(async (ledger) => {
      expect(await ledger.getProjectQuotaSet('acme', 'web')).toEqual(before.web);
      expect(await ledger.getQuotaSet('acme')).toEqual(before.acme);
      expect((await ledger.listAllocations('acme', 'web')).items).toHaveLength(2);
      expect((await ledger.listHolds('acme', 'web')).items).toHaveLength(1);
      expect(await readAll(ledger, 'acme')).toHaveLength(before.revisions);
    });

    const deleted = await run('project', 'delete', 'acme', 'web', '--cascade');
    expect(deleted).toEqual({
      code: 0,
      stdout: 'project acme/web deleted (2 allocations deleted, 1 holds released)\n',
      stderr: '',
    });

    const gone = await run('quota', 'show', 'acme', '--project', 'web', '--json');
    expect(gone.code).toBe(1);
    expect(gone.stdout).toBe('');
    expect(gone.stderr).toMatch(/^allot: not-found: .*web/);

    // web's usage and its guarantee are gone: only batch's 4 remain, nothing is kept back.
    const organization = await run('quota', 'show', 'acme', '--json');
    expect(organization.code).toBe(0);
    expect(rowOf(JSON.parse(organization.stdout), 'gpus')).toMatchObject({
      quantity: 100,
      used: 4,
      committed: 4,
      reserved: 0,
      held: 0,
      guaranteed: 0,
      free: 96,
      freeForAnyProject: 96,
    });

    // An empty project goes without --cascade.
    const idle = await run('project', 'delete', 'acme', 'idle');
    expect(idle).toEqual({ code: 0, stdout: 'project acme/idle deleted (0 allocations deleted, 0 holds released)\n', stderr: '' });

    await withLedger(async (ledger) => {
      const journal = (await readAll(ledger, 'acme')).slice(before.revisions);
      expect(journal.map((e) => [e.action, e.project, e.principal])).toEqual([
        ['allocation.deleted', 'web', 'cli'],
        ['allocation.deleted', 'web', 'cli'],
        ['hold.released', 'web', 'cli'],
        ['project.deleted', 'web', 'cli'],
        ['project.deleted', 'idle', 'cli'],
      ]);
      for (const entry of journal.slice(0, 3)) expect(entry.changes).toMatchObject({ cascade: true });
      expect(journal[3]!.changes).toEqual({ cascade: true, ended: { allocations: 2, holds: 1 } });
      expect(journal[4]!.changes).toEqual({ cascade: false, ended: { allocations: 0, holds: 0 } });
      expect((await ledger.listProjects('acme')).items.map((p) => p.id)).toEqual(['batch']);
      expect(await ledger.verifyCounters()).toEqual([]);
      expect(await ledger.verifyJournal()).toEqual([]);
      // The id can be used again: a fresh project with no project quota.
      await ledger.putProject('acme', 'web', {});
      expect(rowOf(await ledger.getProjectQuotaSet('acme', 'web'), 'gpus')).toMatchObject({
        cap: null,
        guaranteed: 0,
        used: 0,
      });
    });
  });
});
