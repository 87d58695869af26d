// Goal: the usage history keeps what the issue asks: the controller's sampling records every
// organization quota's usage and every limit's usage (with the limit in force), once per
// sampling interval however many controllers sample it; reads answer each step's highest usage
// over a range; finished hours roll up into hourly highs — each hour's highest usage and limit,
// not its last, every finished hour even after the sampling stopped for hours — that outlive
// the raw samples; raw and hourly samples past retention are dropped; bad ranges are refused
// with nothing read; the HTTP routes serve the same, to principals who may read the tenant.
// Method: per engine, a ledger on a ManualClock; usage moved by allocations and limit usage
// reports between samples taken through LimitsController.sampleHistory (two controllers, to
// show one sample per interval); exact expected points; one app (buildApp) for the routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { LimitsController } from '../../src/controller/controller.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import { AllotError } from '../../src/domain/errors.js';
import { engines, ManualClock, openTestLedger, type TestLedger } from '../support/engines.js';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
const start = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe.each(engines)('usage history on %s', (engine) => {
  const clock = new ManualClock(start);
  let test: TestLedger;
  let ledger: Ledger;
  let eu: LimitsController;
  let us: LimitsController;
  let n = 0;

  const allocate = (committed: number) =>
    ledger.createAllocation('acme', 'web', { resource: { kind: 'vm', id: `vm-${(n += 1)}` }, allocations: [{ kind: 'gpus', committed }] });

  beforeAll(async () => {
    test = await openTestLedger(engine, clock);
    ledger = test.ledger;
    await ledger.putKind('gpus', { displayName: 'GPUs' });
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 100 }]);
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 10 }, { region: 'us-1', limit: 5 }]);
    eu = new LimitsController({ ledger, region: 'eu-1', historyIntervalMs: minute });
    us = new LimitsController({ ledger, region: 'us-1', historyIntervalMs: minute });
  });

  afterAll(async () => {
    await test?.close();
  });

  it('samples once per interval, whichever controllers sample it', async () => {
    await allocate(7);
    expect(await eu.sampleHistory()).toBe(3); // one quota, two limit regions
    expect(await eu.sampleHistory()).toBe(0); // this interval is done here
    clock.advance(10_000);
    expect(await us.sampleHistory()).toBe(3); // the same interval from another controller: one row each
    const rows = await ledger.store.transaction((tx) => tx.all<{ n: number | string }>("SELECT COUNT(*) AS n FROM usage_history WHERE resolution = 'raw'"));
    expect(Number(rows[0]!.n)).toBe(3);
  });

  it('answers each step’s highest usage, with the limit in force', async () => {
    // Minutes 1..5: usage 7 → 9 → 12 → 12 → 20, the quota raised at minute 4.
    const moves: (() => Promise<unknown>)[] = [
      () => allocate(2),
      () => allocate(3),
      () => Promise.resolve(),
      () => ledger.setQuotas('acme', [{ kind: 'gpus', quantity: 150 }]),
      () => allocate(8),
    ];
    for (const move of moves) {
      clock.advance(minute);
      await move();
      await eu.sampleHistory();
    }
    const series = await ledger.getQuotaHistory('acme', 'gpus', { from: iso(start), to: iso(start + 6 * minute), step: 120 });
    expect(series).toEqual({
      organization: 'acme',
      series: 'quota:gpus',
      from: iso(start),
      to: iso(start + 6 * minute),
      stepSeconds: 120,
      points: [
        { at: iso(start), used: 9, quantity: 100 },
        { at: iso(start + 2 * minute), used: 12, quantity: 100 },
        { at: iso(start + 4 * minute), used: 20, quantity: 150 },
      ],
    });
  });

  it('records limit usage per region, with the active limit (never below usage)', async () => {
    clock.advance(minute);
    await ledger.reportLimitUsage('acme', 'web', 'compute', 'instances', 'eu-1', 12);
    await eu.sampleHistory();
    const items = await ledger.getLimitHistory('acme', 'web', 'compute', 'instances', {
      from: iso(start + 6 * minute),
      to: iso(start + 7 * minute),
      step: 60,
    });
    expect(items.map((s) => [s.series, s.points])).toEqual([
      ['limit:web/compute/instances/eu-1', [{ at: iso(start + 6 * minute), used: 12, quantity: 12 }]],
      ['limit:web/compute/instances/us-1', [{ at: iso(start + 6 * minute), used: 0, quantity: 5 }]],
    ]);
    const one = await ledger.getLimitHistory('acme', 'web', 'compute', 'instances', { region: 'us-1', from: iso(start), step: 3600, to: iso(start + hour) });
    expect(one.map((s) => s.series)).toEqual(['limit:web/compute/instances/us-1']);
  });

  it('rolls finished hours up into hourly highs, which outlive the raw samples', async () => {
    clock.advance(hour); // into hour 1: hour 0 is finished
    await eu.sampleHistory();
    const hourly = await ledger.store.transaction((tx) =>
      tx.all<{ at: number | string; used: number | string }>(
        "SELECT at, used FROM usage_history WHERE resolution = 'hour' AND series = 'quota:gpus' ORDER BY at",
      ),
    );
    expect(hourly.map((row) => [Number(row.at), Number(row.used)])).toEqual([[start, 20]]);
    // Eight days on: the raw samples of the first hour are gone, the hourly high stays and answers.
    clock.advance(8 * day);
    await eu.sampleHistory();
    const raw = await ledger.store.transaction((tx) =>
      tx.all<{ n: number | string }>("SELECT COUNT(*) AS n FROM usage_history WHERE resolution = 'raw' AND at < ?", [start + 2 * hour]),
    );
    expect(Number(raw[0]!.n)).toBe(0);
    const old = await ledger.getQuotaHistory('acme', 'gpus', { from: iso(start), to: iso(start + hour), step: 3600 });
    expect(old.points).toEqual([{ at: iso(start), used: 20, quantity: 150 }]);
  });

  it('refuses bad ranges, unknown tenants and unknown limit regions', async () => {
    const refusal = async (work: () => Promise<unknown>) => {
      try {
        await work();
      } catch (error) {
        return error instanceof AllotError ? error.code : String(error);
      }
      return 'accepted';
    };
    expect(await refusal(() => ledger.getQuotaHistory('acme', 'gpus', { from: iso(start + hour), to: iso(start) }))).toBe('invalid-request');
    expect(await refusal(() => ledger.getQuotaHistory('acme', 'gpus', { from: 'yesterday' }))).toBe('invalid-request');
    expect(await refusal(() => ledger.getQuotaHistory('acme', 'gpus', { from: iso(start), to: iso(start + 30 * day), step: 1 }))).toBe('invalid-request');
    expect(await refusal(() => ledger.getQuotaHistory('nobody', 'gpus'))).toBe('not-found');
    expect(await refusal(() => ledger.getLimitHistory('acme', 'web', 'compute', 'instances', { region: 'ap-1' }))).toBe('not-found');
    expect(await refusal(() => ledger.getLimitHistory('acme', 'web', 'compute', 'nothing'))).toBe('not-found');
  });

  it('serves the same over HTTP, to principals who may read the tenant', async () => {
    const app = await buildApp({ ledger, adminToken: 'admin' });
    try {
      const member = (await ledger.createToken({ role: 'project-member', organization: 'acme', project: 'web' })).token;
      await ledger.putOrganization('other', {});
      const stranger = (await ledger.createToken({ role: 'reader', organization: 'other' })).token;
      const get = (url: string, token: string) => app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      const url = `/v1/organizations/acme/history?kind=gpus&from=${iso(start)}&to=${iso(start + 6 * minute)}&step=120`;
      const answer = await get(url, member);
      expect(answer.statusCode).toBe(200);
      // Days later, those minutes are answered from the hour's high.
      expect(answer.json().points).toEqual([{ at: iso(start), used: 20, quantity: 150 }]);
      expect((await get(url, stranger)).statusCode).toBe(404);
      expect((await get('/v1/organizations/acme/history?kind=gpus&step=x', member)).statusCode).toBe(400);
      expect((await get('/v1/organizations/acme/history', member)).statusCode).toBe(400);
      const limit = await get(`/v1/organizations/acme/projects/web/limits/compute/instances/history?region=eu-1&from=${iso(start)}&to=${iso(start + hour)}&step=3600`, member);
      expect(limit.statusCode).toBe(200);
      expect(limit.json().items.map((s: { series: string; points: unknown }) => [s.series, s.points])).toEqual([
        ['limit:web/compute/instances/eu-1', [{ at: iso(start), used: 12, quantity: 12 }]],
      ]);
    } finally {
      await app.close();
    }
  });
});

describe.each(engines)('the hourly roll-up on %s', (engine) => {
  const clock = new ManualClock(start);
  let test: TestLedger;
  let ledger: Ledger;
  let controller: LimitsController;
  const series = 'limit:web/compute/instances/eu-1';
  const hourly = async () =>
    (
      await ledger.store.transaction((tx) =>
        tx.all<{ at: number | string; used: number | string; quantity: number | string }>(
          "SELECT at, used, quantity FROM usage_history WHERE resolution = 'hour' AND series = ? ORDER BY at",
          [series],
        ),
      )
    ).map((row) => [Number(row.at) - start, Number(row.used), Number(row.quantity)]);
  /** Reports `usage` at `minute` after the start, then samples (an interval of 20 minutes). */
  const sampleAt = async (minute: number, usage?: number) => {
    clock.advance(start + minute * 60_000 - clock.nowMs());
    if (usage !== undefined) await ledger.reportLimitUsage('acme', 'web', 'compute', 'instances', 'eu-1', usage);
    expect(await controller.sampleHistory()).toBe(1);
  };

  beforeAll(async () => {
    test = await openTestLedger(engine, clock);
    ledger = test.ledger;
    await ledger.putOrganization('acme', {});
    await ledger.putProject('acme', 'web', {});
    await ledger.setLimit('acme', 'web', 'compute', 'instances', [{ region: 'eu-1', limit: 6 }]);
    controller = new LimitsController({ ledger, region: 'eu-1', historyIntervalMs: 20 * minute });
  });

  afterAll(async () => {
    await test?.close();
  });

  it('keeps each finished hour’s highest usage and limit, not its last', async () => {
    // Hour 0: 5, 9, 4 (the limit in force 6, 9, 6); hour 1: 3, 3.
    for (const [minute, usage] of [[0, 5], [20, 9], [40, 4], [60, 3], [80, 3]] as const) await sampleAt(minute, usage);
    expect(await hourly()).toEqual([[0, 9, 9]]); // hour 1 is not finished yet
  });

  it('rolls up every finished hour after the sampling stopped for hours, and the hours outlive the raw samples', async () => {
    // The controllers were down from minute 80 to hour 6: hour 1 is rolled up all the same.
    await sampleAt(6 * 60);
    expect(await hourly()).toEqual([[0, 9, 9], [hour, 3, 6]]);
    // Eight days on the raw samples are gone; the hourly highs answer for those hours.
    await sampleAt(8 * 24 * 60);
    const raw = await ledger.store.transaction((tx) =>
      tx.all<{ n: number | string }>("SELECT COUNT(*) AS n FROM usage_history WHERE resolution = 'raw' AND at < ?", [start + day]),
    );
    expect(Number(raw[0]!.n)).toBe(0);
    const [read] = await ledger.getLimitHistory('acme', 'web', 'compute', 'instances', { from: iso(start), to: iso(start + 2 * hour), step: 3600 });
    expect(read!.points).toEqual([
      { at: iso(start), used: 9, quantity: 9 },
      { at: iso(start + hour), used: 3, quantity: 6 },
    ]);
  });
});
