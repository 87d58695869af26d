// Goal: standalone controllers can be watched. Two regions, each with its `allot controller`
// process (the built CLI) serving /metrics and /healthz on a port of its own
// (`--metrics-port 0`, the address printed on stdout): each keeps its part of the trackers
// and usage in step, and its own /metrics shows its passes (its region only), the hosts'
// reachability, and the drifts its region's host found — one made by an on-demand recount the
// controller had no part in, counted once; `--history-interval` sets how often usage is
// sampled; SIGTERM stops them cleanly and their ports close.
// Method: per engine for allot's database, `allot serve` for the setup (through /v1, admin
// token), one example host process per region (`npx tsx examples/instances/server.ts`, SQLite
// files), and `allot controller --region R --interval 100 --history-interval 1000
// --metrics-port 0` per region. Everything is awaited by polling for its condition, never by
// sleeping a fixed time; a tracker is corrupted by hand in the us-1 host's database, then the
// host is asked to recount.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { createTestDatabase, engines, type TestDatabase } from '../support/engines.js';
import { waitFor as waitUntil } from '../support/wait.js';
import { parseExposition, type Scrape } from '../support/scrape.js';
import { request, startAllotController, startAllotServe, startHost, type RunningProcess } from './controller/processes.js';

const adminToken = 'controllers-metrics-admin-token';
const regions = ['eu-1', 'us-1'] as const;
type Region = (typeof regions)[number];
const hostToken = (region: Region) => `${region}-host-token`;

/** The controllers' passes take seconds each: wait up to a minute for what they do. */
const waitFor = <T>(what: string, probe: () => Promise<T | undefined>) => waitUntil(what, probe, 60_000);


describe.each(engines)('standalone controllers watched through their own metrics port (allot on %s)', (engine) => {
  let allotDb: TestDatabase;
  let hostDir: string;
  const started: RunningProcess[] = [];
  const hosts = {} as Record<Region, RunningProcess>;
  const controllers = {} as Record<Region, RunningProcess>;
  let api: RunningProcess;
  const allot = (method: string, path: string, body?: unknown) => request(api.ready, method, path, adminToken, body);
  const hostDb = (region: Region) => `sqlite:${join(hostDir, `${region}.db`)}`;
  const tracker = async (region: Region) => {
    const answer = await request(hosts[region].ready, 'GET', '/admin/trackers/live/instances', hostToken(region));
    return answer.status === 200 ? (answer.json as { limit: number; used: number }) : undefined;
  };
  const scrape = async (region: Region): Promise<Scrape> => {
    const answer = await request(controllers[region].ready, 'GET', '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^text\/plain/);
    return parseExposition(answer.text);
  };

  beforeAll(async () => {
    allotDb = await createTestDatabase(engine);
    hostDir = mkdtempSync(join(tmpdir(), 'allot-controllers-metrics-'));
    const launches = [
      startAllotServe(allotDb.url, adminToken).then((p) => (api = p)),
      ...regions.map((region) => startHost(region, hostDb(region), hostToken(region)).then((p) => (hosts[region] = p))),
    ];
    const results = await Promise.allSettled(launches);
    for (const result of results) if (result.status === 'fulfilled') started.push(result.value);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
    for (const region of regions) {
      expect((await allot('PUT', `/v1/regions/${region}`, {})).status).toBe(201);
      const host = await allot('PUT', `/v1/regions/${region}/hosts/compute`, { endpoint: hosts[region].ready, token: hostToken(region) });
      expect(host.status, host.text).toBe(200);
    }
    expect((await allot('PUT', '/v1/organizations/acme', {})).status).toBe(201);
    expect((await allot('PUT', '/v1/organizations/acme/projects/live', {})).status).toBe(201);
    const placed = await allot('PUT', '/v1/organizations/acme/projects/live/regions', { primary: 'eu-1', enabled: [...regions] });
    expect(placed.status, placed.text).toBe(200);
    const limit = await allot('PUT', '/v1/organizations/acme/projects/live/limits/compute/instances', {
      regions: [{ region: 'eu-1', limit: 2 }, { region: 'us-1', limit: 3 }],
    });
    expect(limit.status, limit.text).toBe(200);
    const args = ['--history-interval', '1000', '--metrics-port', '0'];
    for (const region of regions) {
      controllers[region] = await startAllotController(allotDb.url, region, 100, args);
      started.push(controllers[region]);
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(started.map((p) => p.stop()));
    await allotDb?.drop();
    if (hostDir) rmSync(hostDir, { recursive: true, force: true });
  });

  it('each serves /healthz and /metrics on its own port, printed on stdout; nothing else', async () => {
    for (const region of regions) {
      expect(controllers[region].ready).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await request(controllers[region].ready, 'GET', '/healthz')).toMatchObject({ status: 200, json: { status: 'ok' } });
      expect((await request(controllers[region].ready, 'GET', '/other')).status).toBe(404);
      expect((await request(controllers[region].ready, 'POST', '/metrics')).status).toBe(405);
    }
    expect(controllers['eu-1'].ready).not.toBe(controllers['us-1'].ready);
  });

  it('keeps the trackers and usage in step, and shows its passes, the hosts and the drifts in its own /metrics', async () => {
    await waitFor('the trackers in both hosts', async () =>
      (await tracker('eu-1'))?.limit === 2 && (await tracker('us-1'))?.limit === 3 ? true : undefined,
    );
    for (const name of ['a', 'b']) {
      expect((await request(hosts['us-1'].ready, 'POST', '/projects/live/instances', undefined, { name })).status).toBe(201);
    }
    await waitFor('us-1 usage synced', async () => {
      const limit = await allot('GET', '/v1/organizations/acme/projects/live/limits/compute/instances');
      return limit.json.regions.find((r: { region: string }) => r.region === 'us-1').usage === 2 ? true : undefined;
    });

    // A drift the controllers have no part in: the tracker corrupted by hand, then recounted on
    // the host's own admin route (or by us-1's controller's periodic recount, whichever is first).
    const store = openStore(hostDb('us-1'));
    try {
      await store.transaction((tx) => tx.run("UPDATE allot_limit_trackers SET used = 0 WHERE project = 'live'"));
    } finally {
      await store.close();
    }
    expect((await request(hosts['us-1'].ready, 'POST', '/admin/trackers/recount', hostToken('us-1'), {})).status).toBe(200);
    const driftsOf = (scraped: Scrape, region: Region) => scraped.value('allot_drift_found_total', { region, service: 'compute' });
    await waitFor('the drift in us-1’s metrics', async () => ((driftsOf(await scrape('us-1'), 'us-1') ?? 0) >= 1 ? true : undefined));
    expect((await request(hosts['us-1'].ready, 'GET', '/admin/trackers', hostToken('us-1'))).json.drifts).toBe(1);
    expect(await tracker('us-1')).toMatchObject({ limit: 3, used: 2 });

    // Several passes later, still counted once, and by us-1's controller alone.
    const passesNow = (await scrape('us-1')).value('allot_controller_passes_total', { region: 'us-1', outcome: 'ok' }) ?? 0;
    await waitFor('three more passes of us-1', async () =>
      ((await scrape('us-1')).value('allot_controller_passes_total', { region: 'us-1', outcome: 'ok' }) ?? 0) >= passesNow + 3 ? true : undefined,
    );
    for (const region of regions) {
      const scraped = await scrape(region);
      const other: Region = region === 'eu-1' ? 'us-1' : 'eu-1';
      expect(scraped.value('allot_controller_passes_total', { region, outcome: 'ok' })).toBeGreaterThan(0);
      expect(scraped.all('allot_controller_passes_total').filter((s) => s.labels.region === other)).toEqual([]);
      expect(scraped.value('allot_controller_reconcile_seconds_count')).toBeGreaterThan(0);
      for (const host of regions) expect(scraped.value('allot_region_host_up', { region: host, service: 'compute' })).toBe(1);
      expect(driftsOf(scraped, other)).toBeUndefined();
      expect(scraped.families.get('process_cpu_user_seconds_total')).toBe('counter');
    }
    expect(driftsOf(await scrape('us-1'), 'us-1')).toBe(1);
    expect(driftsOf(await scrape('eu-1'), 'eu-1') ?? 0).toBe(0);
  });

  it('samples usage into the history at --history-interval', async () => {
    // Usage is 2 from now on: two samples of later seconds show up within seconds (the default
    // interval is a minute), each with that usage.
    const afterMs = (Math.floor(Date.now() / 1000) + 1) * 1000;
    const points = await waitFor('two history samples of us-1 after now', async () => {
      const from = new Date(afterMs - 10 * 60_000).toISOString();
      const history = await allot('GET', `/v1/organizations/acme/projects/live/limits/compute/instances/history?region=us-1&step=1&from=${from}`);
      expect(history.status, history.text).toBe(200);
      const found = (history.json.items[0].points as { at: string; used: number }[]).filter((point) => Date.parse(point.at) >= afterMs);
      return found.length >= 2 ? found : undefined;
    });
    expect(new Set(points.map((point) => point.at)).size).toBe(points.length);
    for (const point of points) expect(point).toMatchObject({ used: 2, quantity: 3 });
  });

  it('stops cleanly on SIGTERM, its port closed', async () => {
    for (const region of regions) {
      const url = controllers[region].ready;
      await controllers[region].stop();
      expect(await controllers[region].exited).toBe(0);
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    }
  });
});
