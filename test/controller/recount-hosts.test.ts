// Goal: the controller's periodic true recount reaches its region's hosts, has them fix
// trackers that drifted from their rows, and counts what was found in
// allot_drift_found_total; drifts of every cause in the host's journal (recounts on demand,
// limit changes, the controller's own recounts) reach that metric exactly once, from the count
// the host's trackers answer gives; a host that does not answer is recorded, not fatal.
// Method: per engine for allot's database, the example host in-process (buildInstancesApp,
// listening on a free port, SQLite file) registered as region eu-1's compute host; a tracker
// corrupted by hand with SQL; LimitsController.recountHosts and reconcileOnce with prom-client
// metrics, read from the registry's text.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInstancesApp } from '../../examples/instances/app.js';
import { LimitsController } from '../../src/controller/controller.js';
import { createMetrics } from '../../src/controller/metrics.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { engines, openTestLedger, type TestLedger } from '../support/engines.js';

describe.each(engines)('controller recount of hosts (allot on %s)', (engine) => {
  let test: TestLedger;
  let ledger: Ledger;
  let host: Awaited<ReturnType<typeof buildInstancesApp>>;
  let dir: string;

  beforeAll(async () => {
    test = await openTestLedger(engine);
    ledger = test.ledger;
    dir = mkdtempSync(join(tmpdir(), 'allot-recount-'));
    host = await buildInstancesApp({ db: `sqlite:${join(dir, 'host.db')}`, region: 'eu-1', adminToken: 'host-secret' });
    const address = await host.app.listen({ host: '127.0.0.1', port: 0 });
    await ledger.putRegion('eu-1', {});
    await ledger.putRegionHost('eu-1', 'compute', { endpoint: address, token: 'host-secret' });
  });

  afterAll(async () => {
    await host?.app.close();
    await test?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds a drifted tracker, has its host fix it, and counts it', async () => {
    await host.mixin.setLimit('web', 'instances', 5);
    await host.mixin.transaction((tx) => tx.run("INSERT INTO instances (id, project_id, name, created_at) VALUES ('a', 'web', 'a', 0), ('b', 'web', 'b', 0)"));
    await host.mixin.store.transaction((tx) => tx.run("UPDATE allot_limit_trackers SET used = 4 WHERE project = 'web'"));
    const metrics = createMetrics(ledger);
    const controller = new LimitsController({ ledger, region: 'eu-1', metrics: metrics.controller });
    expect(await controller.recountHosts()).toBe(1);
    expect((await host.mixin.getTracker('web', 'instances')).used).toBe(2);
    expect(await controller.recountHosts()).toBe(0);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/allot_drift_found_total\{region="eu-1",service="compute"\} 1\n/);
  });

  it('limits show whether their region’s host is reached: ok, stale, or none registered', async () => {
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 5 }, { region: 'us-1', limit: 5 }]);
    await ledger.setLimit('acme', 'web', 'storage', 'volumes', [{ region: 'eu-1', limit: 5 }]);
    await ledger.putRegionHost('eu-1', 'storage', { endpoint: 'http://127.0.0.1:9', token: 'nobody' });
    const before = await ledger.getLimit('acme', 'web', 'storage', 'volumes');
    expect(before.regions.map((r) => r.hostStatus)).toEqual(['unknown']);
    const report = await new LimitsController({ ledger, region: 'eu-1' }).reconcileOnce();
    expect(report.hostErrors.map((e) => e.service)).toEqual(['storage']);
    const compute = await ledger.getLimit('acme', 'web', 'compute', 'instances');
    expect(compute.regions.map((r) => [r.region, r.hostStatus])).toEqual([['eu-1', 'ok'], ['us-1', 'none']]);
    expect((await ledger.getLimit('acme', 'web', 'storage', 'volumes')).regions.map((r) => r.hostStatus)).toEqual(['stale']);
    // A usage report answers the region as reads show it, its host's status included.
    expect(await ledger.reportLimitUsage('acme', 'web', 'compute', 'instances', 'eu-1', 1)).toMatchObject({ usage: 1, hostStatus: 'ok' });
  });

  it('drifts of every cause reach the metric once: on-demand recounts, limit changes, the controller’s recounts', async () => {
    const metrics = createMetrics(ledger);
    const controller = new LimitsController({ ledger, region: 'eu-1', metrics: metrics.controller });
    const counted = async () => {
      const match = /allot_drift_found_total\{region="eu-1",service="compute"\} (\d+)/.exec(await metrics.registry.metrics());
      return Number(match?.[1] ?? 0);
    };
    const corrupt = (used: number) =>
      host.mixin.store.transaction((tx) => tx.run("UPDATE allot_limit_trackers SET used = ? WHERE project = 'web'", [used]));
    // The first answer counts what the host's journal already holds (the first test's drift).
    const before = await host.mixin.driftCount();
    expect(before).toBe(1);
    await controller.reconcileOnce();
    expect(await counted()).toBe(before);
    // Two drifts the controller had no part in: a recount on demand, and one a limit change found.
    await corrupt(9);
    expect(await host.mixin.recount()).toHaveLength(1);
    await corrupt(7);
    await host.mixin.setLimit('web', 'instances', 6);
    await controller.reconcileOnce();
    expect(await counted()).toBe(before + 2);
    // The controller's own recount: counted once, by it or by the next pass, never both.
    await corrupt(3);
    expect(await controller.recountHosts()).toBe(1);
    expect(await counted()).toBe(before + 3);
    await controller.reconcileOnce();
    expect(await counted()).toBe(before + 3);
    expect(await host.mixin.driftCount()).toBe(before + 3);
  });

  it('records a host that does not answer, and goes on', async () => {
    await ledger.putRegionHost('eu-1', 'storage', { endpoint: 'http://127.0.0.1:9', token: 'nobody' });
    const controller = new LimitsController({ ledger, region: 'eu-1' });
    expect(await controller.recountHosts()).toBe(0);
    const region = await ledger.getRegion('eu-1');
    expect(region.hosts.find((h) => h.service === 'storage')).toMatchObject({ status: 'stale' });
    expect(region.hosts.find((h) => h.service === 'compute')?.lastError).toBeNull();
  });
});
