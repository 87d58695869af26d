// Goal: `allot batch` decides a file of operations as the batch route does, on both engines:
// independent (each on its own, a refusal named on its line, exit 1), atomic (a refusal
// writes nothing), a dry run (the real answer, nothing written), and a malformed file (a
// clear refusal, nothing written). Method: run the built command on a database a ledger set
// up, and read the books back through the ledger.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLedger, type Ledger } from '../../src/index.js';
import { allot } from '../support/cli.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';

const dir = mkdtempSync(join(tmpdir(), 'allot-cli-batch-'));
let files = 0;
function file(content: unknown): string {
  const path = join(dir, `batch-${(files += 1)}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const create = (project: string, id: string, gpus: number) => ({
  op: 'allocation.create',
  project,
  body: { resource: { kind: 'server', id }, allocations: [{ kind: 'gpus', committed: gpus }] },
});

describe.each(engines)('allot batch on %s', (engine) => {
  let database: TestDatabase;
  let ledger: Ledger;
  const used = async () => (await ledger.getQuotas('acme')).find((q) => q.kind === 'gpus')!.used;
  const revision = async () => (await ledger.readJournal('acme', 0, 1000)).at(-1)?.revision ?? 0;

  beforeAll(async () => {
    database = await createTestDatabase(engine);
    ledger = await openLedger({ db: database.url });
    await ledger.putKind('gpus', { displayName: 'GPUs' });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.putProject('acme', 'train', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 10 }]);
  });
  afterAll(async () => {
    await ledger.close();
    await database.drop();
  });

  it('decides each operation on its own and names the refused one', async () => {
    const result = await allot('batch', 'acme', file({ operations: [create('web', 'a', 4), create('train', 'b', 20), create('train', 'c', 3)] }), '--db', database.url);
    expect(result.code, result.stderr).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^0 allocation\.create web: applied \S+ \(generation 1\)$/);
    expect(lines[1]).toMatch(/^1 allocation\.create train: refused quota-exceeded: /);
    expect(lines[2]).toMatch(/^2 allocation\.create train: applied /);
    expect(lines[3]).toBe('batch (independent): 2 applied, 1 refused, 0 not applied');
    expect(await used()).toBe(7);
  });

  it('writes nothing of an atomic batch with a refusal', async () => {
    const before = await revision();
    const result = await allot('batch', 'acme', file([create('web', 'd', 1), create('web', 'e', 5)]), '--atomic', '--db', database.url);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('0 allocation.create web: not applied');
    expect(result.stdout).toContain('batch (atomic): 0 applied, 1 refused, 1 not applied');
    expect(await used()).toBe(7);
    expect(await revision()).toBe(before);
  });

  it('answers a dry run as the real one, and writes nothing', async () => {
    const before = await revision();
    const result = await allot('batch', 'acme', file([create('web', 'f', 3)]), '--dry-run', '--json', '--db', database.url);
    expect(result.code, result.stderr).toBe(0);
    const [outcome] = JSON.parse(result.stdout) as { status: string; value: { allocations: unknown[] } }[];
    expect(outcome).toMatchObject({ status: 'applied', value: { allocations: [{ kind: 'gpus', committed: 3, reserved: 0 }] } });
    expect(await used()).toBe(7);
    expect(await revision()).toBe(before);
  });

  it('refuses a malformed file clearly, and writes nothing', async () => {
    const before = await revision();
    const malformed: [unknown, RegExp][] = [
      ['{"operations": [', /^allot: invalid-request: file: is not JSON/],
      [{ operations: [{ op: 'allocation.explode', project: 'web' }] }, /^allot: invalid-request: operations\[0\]\.op: /],
      [{ operations: [] }, /^allot: invalid-request: operations: /],
    ];
    for (const [content, refusal] of malformed) {
      const result = await allot('batch', 'acme', file(content), '--db', database.url);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(refusal);
    }
    // An entry its route would refuse: a delete without the id it needs, a create given one.
    const noId = await allot('batch', 'acme', file([create('web', 'g', 1), { op: 'allocation.delete', project: 'web' }]), '--db', database.url);
    expect(noId).toMatchObject({ code: 1, stderr: 'allot: invalid-request: operations[1].id: is required by allocation.delete\n' });
    const withId = await allot('batch', 'acme', file([{ ...create('web', 'g', 1), id: '0190a000-0000-7000-8000-000000000001' }]), '--db', database.url);
    expect(withId).toMatchObject({ code: 1, stderr: 'allot: invalid-request: operations[0].id: is not taken by allocation.create\n' });
    expect(await revision()).toBe(before);
  });
});
