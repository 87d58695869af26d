// Goal: what a limit's regions say is per region. (1) hostStatus is the region's own
// controller's: usage that controller has not refreshed for 30 s is `stale` even while another
// region's controller reaches the host (GET /v1/regions still shows the host reached), and a
// region whose controller has not synced yet is `unknown`. (2) A region taken out of a
// project's enabled regions shows the project's limits there `disabled` (kept: a service-admin
// set them, and whoever sets the regions may be an org-admin), a global bound goes to the
// regions left, the primary's next pass leaves no tracker on the region's host, which then
// refuses the project's creates, and the region coming back brings its limit back. (3) A global
// bound with a region that has no host is not shared out, and the pass says why.
// Method: per engine, allot's ledger on a ManualClock and two in-process example hosts on
// that engine (eu-1, us-1); the controllers of both regions run one pass at a time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LimitsController } from '../../src/controller/controller.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { engines, ManualClock, openTestLedger, type TestLedger } from '../support/engines.js';
import { createMany, startHosts, stopHosts, type TestHost } from './hosts.js';

describe.each(engines)('limit regions per region (allot and hosts on %s)', (engine) => {
  const clock = new ManualClock();
  let test: TestLedger;
  let ledger: Ledger;
  let hosts: TestHost[] = [];
  let eu: LimitsController;
  let us: LimitsController;
  const statuses = async () =>
    Object.fromEntries((await ledger.getLimit('acme', 'web', 'compute', 'instances')).regions.map((r) => [r.region, r.hostStatus]));
  const reached = async (region: string) => (await ledger.getRegion(region)).hosts[0]!.status;

  beforeAll(async () => {
    test = await openTestLedger(engine, clock);
    ledger = test.ledger;
    hosts = await startHosts(engine, ledger, ['eu-1', 'us-1']);
    await ledger.putOrganization('acme', {});
    for (const project of ['web', 'batch']) {
      await ledger.putProject('acme', project, {});
      await ledger.setProjectRegions('acme', project, { primary: 'eu-1', enabled: ['eu-1', 'us-1'] });
    }
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 5 }, { region: 'us-1', limit: 5 }]);
    await ledger.setLimit('acme', 'batch', 'compute', 'instances', [{ region: 'eu-1' }, { region: 'us-1' }], { global: 10 });
    eu = new LimitsController({ ledger, region: 'eu-1' });
    us = new LimitsController({ ledger, region: 'us-1' });
  });

  afterAll(async () => {
    await stopHosts(hosts);
    await test?.close();
  });

  it('hostStatus: the region’s own controller’s sync, not another region’s reach', async () => {
    expect(await statuses()).toEqual({ 'eu-1': 'unknown', 'us-1': 'unknown' });
    // The primary (eu-1) reaches both hosts; only eu-1's usage is synced.
    expect(await eu.reconcileOnce()).toMatchObject({ hostErrors: [] });
    expect(await statuses()).toEqual({ 'eu-1': 'ok', 'us-1': 'unknown' });
    expect(await reached('us-1')).toBe('ok');
    expect(await us.reconcileOnce()).toMatchObject({ usageReported: 2, hostErrors: [] }); // web's and batch's
    expect(await statuses()).toEqual({ 'eu-1': 'ok', 'us-1': 'ok' });
    // 31 s on, only eu-1's controller runs: it still reaches us-1's host, whose usage is stale.
    clock.advance(31_000);
    await eu.reconcileOnce();
    expect(await statuses()).toEqual({ 'eu-1': 'ok', 'us-1': 'stale' });
    expect(await reached('us-1')).toBe('ok');
    await us.reconcileOnce();
    expect(await statuses()).toEqual({ 'eu-1': 'ok', 'us-1': 'ok' });
  });

  it('a region taken out of the enabled regions shows its limits disabled, and its host keeps no tracker', async () => {
    const projectsIn = async (host: TestHost) => (await host.host.mixin.listTrackers()).map((t) => t.project).sort();
    expect(await projectsIn(hosts[1]!)).toEqual(['batch', 'web']);
    // Taken out by whoever may set the project's regions (an org-admin too): the limits, set by a
    // service-admin, stay — shown disabled — and come back with the region.
    for (const project of ['web', 'batch']) await ledger.setProjectRegions('acme', project, { primary: 'eu-1', enabled: ['eu-1'] });
    expect(await statuses()).toEqual({ 'eu-1': 'ok', 'us-1': 'disabled' });
    const bounded = await ledger.getLimit('acme', 'batch', 'compute', 'instances');
    expect([bounded.global, bounded.regions.map((r) => [r.region, r.hostStatus])]).toEqual([10, [['eu-1', 'ok'], ['us-1', 'disabled']]]);

    // The primary's pass deletes the trackers in us-1; the escrow gives eu-1 the whole bound.
    expect(await eu.reconcileOnce()).toMatchObject({ trackersDeleted: 2, hostErrors: [] });
    expect(await hosts[1]!.host.mixin.listTrackers()).toEqual([]);
    expect(await createMany(hosts[1]!, 'web', 1)).toEqual([409]);
    expect((await hosts[0]!.host.mixin.getTracker('batch', 'instances')).limit).toBe(10);
    expect(await eu.reconcileOnce()).toMatchObject({ trackersSet: 0, trackersDeleted: 0, hostErrors: [] });
    // A limit may still be changed there meanwhile (it stays disabled).
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 5 }, { region: 'us-1', limit: 3 }]);
    expect(await eu.reconcileOnce()).toMatchObject({ trackersSet: 0, trackersDeleted: 0, hostErrors: [] });

    // Back in: the next pass makes the tracker, at the limit as it now is.
    await ledger.setProjectRegions('acme', 'web', { primary: 'eu-1', enabled: ['eu-1', 'us-1'] });
    expect(await eu.reconcileOnce()).toMatchObject({ trackersSet: 1, hostErrors: [] });
    expect(await hosts[1]!.host.mixin.getTracker('web', 'instances')).toMatchObject({ limit: 3 });
  });

  it('names a region with no host as the reason a global bound is not shared out', async () => {
    await ledger.putRegion('ap-1', {});
    await ledger.putProject('acme', 'edge', {});
    await ledger.setProjectRegions('acme', 'edge', { primary: 'eu-1', enabled: ['eu-1', 'ap-1'] });
    await ledger.setLimit('acme', 'edge', 'compute', 'instances', [{ region: 'eu-1' }, { region: 'ap-1' }], { global: 4 });
    const report = await eu.reconcileOnce();
    expect(report.hostErrors).toContainEqual({
      region: 'ap-1',
      service: 'compute',
      error: 'escrow of edge/instances: no host of compute registered in ap-1',
    });
  });
});
