import { openLedger } from '../src/index.js';
import { rmSync } from 'node:fs';
const engine = process.argv[2] ?? 'sqlite';
const conc = Number(process.argv[3] ?? 16);
const ms = Number(process.argv[4] ?? 3000);
let url: string;
if (engine === 'sqlite') { rmSync('/tmp/hb', { recursive: true, force: true }); url = 'sqlite:/tmp/hb/a.db'; }
else {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' }); await c.connect();
  await c.query('DROP SCHEMA IF EXISTS hotdbg CASCADE'); await c.query('CREATE SCHEMA hotdbg'); await c.end();
  url = 'postgres://postgres@127.0.0.1:5432/test?schema=hotdbg';
}
const ledger = await openLedger({ db: url });
await ledger.putKind('gpus', { displayName: 'GPUs' });
await ledger.putOrganization('hot', {});
await ledger.putProject('hot', 'p', {});
await ledger.setQuotas('hot', [{ kind: 'gpus', quantity: 1e15 }]);
const end = Date.now() + ms; let n = 0; const lat: number[] = [];
await Promise.all(Array.from({ length: conc }, async (_, w) => {
  let i = 0;
  while (Date.now() < end) {
    const t = performance.now();
    await ledger.createAllocation('hot', 'p', { resource: { kind: 'vm', id: `${w}-${i++}` }, allocations: [{ kind: 'gpus', committed: 1 }] });
    lat.push(performance.now() - t); n++;
  }
}));
lat.sort((a, b) => a - b);
console.log(engine, 'conc', conc, 'throughput', Math.round(n / (ms / 1000)), '/s p50', lat[Math.floor(lat.length / 2)]!.toFixed(2), 'p99', lat[Math.floor(lat.length * 0.99)]!.toFixed(2), JSON.stringify(ledger.engine.stats), 'avg group', (ledger.engine.stats.decisions / ledger.engine.stats.groups).toFixed(1));
await ledger.close();
