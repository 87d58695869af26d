// Goal: usage never loosens enforcement. A usage report (or synced usage) is an observation:
// it may show a gap — the API's activeLimit is max(configured, usage) — but the limit a host's
// tracker enforces stays the configured value. Before, a report of 60 against a configured 8
// raised the tracker to 60 until the next pass, and a burst in that window took more than
// configured. And a region over its limit refuses creates and accepts deletes.
// Method: per engine, allot's ledger and an in-process example host on that engine, registered
// as region eu-1's host; the controller's passes run one at a time (reconcileOnce). A report
// of 60 against 8, one pass, then a burst of 30 concurrent creates at the host: exactly 8 get
// through. Then the limit is lowered below use: the tracker follows the configured value,
// creates are refused and deletes pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitsController } from '../../src/controller/controller.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';
import { createMany, startHosts, stopHosts, type TestHost } from './hosts.js';

describe.each(engines)('usage never loosens enforcement (allot and host on %s)', (engine) => {
  let test: TestLedger;
  let ledger: Ledger;
  let hosts: TestHost[] = [];
  let eu: TestHost;
  let controller: LimitsController;
  const tracker = () => eu.host.mixin.getTracker('web', 'instances');
  const limitIn = async () => (await ledger.getLimit('acme', 'web', 'compute', 'instances')).regions[0]!;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    ledger = test.ledger;
    hosts = await startHosts(engine, ledger, ['eu-1']);
    eu = hosts[0]!;
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.setProjectRegions('acme', 'web', { primary: 'eu-1', enabled: ['eu-1'] });
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 8 }]);
    controller = new LimitsController({ ledger, region: 'eu-1' });
  });

  afterAll(async () => {
    await stopHosts(hosts);
    await test?.close();
  });

  it('a report of 60 against a configured 8, then a pass: a burst right after gets 8 through, no more', async () => {
    expect(await controller.reconcileOnce()).toMatchObject({ trackersSet: 1, hostErrors: [] });
    expect(await tracker()).toMatchObject({ limit: 8, used: 0 });
    const reported = await ledger.reportLimitUsage('acme', 'web', 'compute', 'instances', 'eu-1', 60);
    expect(reported).toMatchObject({ configuredLimit: 8, activeLimit: 60, usage: 60, gap: 52 });
    // The pass reads the limit with its usage of 60: it leaves the tracker at 8.
    expect(await controller.reconcileOnce()).toMatchObject({ trackersSet: 0, usageReported: 1, hostErrors: [] });
    expect(await tracker()).toMatchObject({ limit: 8, used: 0 });
    const statuses = await createMany(eu, 'web', 30);
    expect(statuses.filter((s) => s === 201)).toHaveLength(8);
    expect(statuses.filter((s) => s === 409)).toHaveLength(22);
    expect(await tracker()).toMatchObject({ limit: 8, used: 8 });
    await controller.reconcileOnce();
    expect(await limitIn()).toMatchObject({ configuredLimit: 8, activeLimit: 8, usage: 8, gap: 0 });
  });

  it('lowered below use: the tracker enforces the configured value, creates are refused and deletes pass', async () => {
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 5 }]);
    expect(await limitIn()).toMatchObject({ configuredLimit: 5, activeLimit: 8, usage: 8, gap: 3 });
    expect(await controller.reconcileOnce()).toMatchObject({ trackersSet: 1, hostErrors: [] });
    expect(await tracker()).toMatchObject({ limit: 5, used: 8 });
    expect(await createMany(eu, 'web', 3)).toEqual([409, 409, 409]);
    const { items } = (await (await fetch(`${eu.url}/projects/web/instances`)).json()) as { items: { id: string }[] };
    for (const item of items.slice(0, 2)) {
      expect((await fetch(`${eu.url}/projects/web/instances/${item.id}`, { method: 'DELETE' })).status).toBe(204);
    }
    // Still over (6 of 5) after a pass that syncs the usage: the tracker stays at 5.
    expect(await controller.reconcileOnce()).toMatchObject({ trackersSet: 0, usageReported: 1 });
    expect(await tracker()).toMatchObject({ limit: 5, used: 6 });
    expect(await limitIn()).toMatchObject({ configuredLimit: 5, activeLimit: 6, usage: 6, gap: 1 });
    expect(await createMany(eu, 'web', 1)).toEqual([409]);
  });
});
