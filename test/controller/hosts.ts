/**
 * In-process example hosts (examples/instances, buildInstancesApp) for the controller tests:
 * one per region, each on its own database of the given engine, listening on a free port and
 * registered in allot as the region's `compute` host.
 */
import { buildInstancesApp } from '../../examples/instances/app.js';
import type { Ledger } from '../../src/ledger/ledger.js';
import type { Engine } from '../../src/store/store.js';
import { createTestDatabase, type TestDatabase } from '../support/engines.js';

export interface TestHost {
  region: string;
  url: string;
  token: string;
  host: Awaited<ReturnType<typeof buildInstancesApp>>;
  database: TestDatabase;
}

export async function startHosts(engine: Engine, ledger: Ledger, regions: readonly string[]): Promise<TestHost[]> {
  const hosts: TestHost[] = [];
  for (const region of regions) {
    const database = await createTestDatabase(engine);
    const token = `${region}-host-secret`;
    const host = await buildInstancesApp({ db: database.url, region, adminToken: token });
    const url = await host.app.listen({ host: '127.0.0.1', port: 0 });
    hosts.push({ region, url, token, host, database });
    await ledger.putRegion(region, {});
    await ledger.putRegionHost(region, 'compute', { endpoint: url, token });
  }
  return hosts;
}

export async function stopHosts(hosts: readonly TestHost[]): Promise<void> {
  for (const { host, database } of hosts) {
    await host.app.close();
    await database.drop();
  }
}

/** Creates `count` instances at once through the host's route; the answers' statuses. */
export async function createMany(host: TestHost, project: string, count: number): Promise<number[]> {
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      fetch(`${host.url}/projects/${project}/instances`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `burst-${i}` }),
      }),
    ),
  );
  return answers.map((answer) => answer.status);
}
