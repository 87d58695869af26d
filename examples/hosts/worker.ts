#!/usr/bin/env node
/**
 * One host process of an example client, for its tests (and to try by hand):
 *   tsx examples/hosts/worker.ts CLIENT URL create PROJECT COUNT   (COUNT creates at once)
 *   tsx examples/hosts/worker.ts CLIENT URL hang PROJECT           (dies mid-transaction)
 * `create` prints READY once its host is open, then {"created":n,"refused":n} — a refusal is an error isLimitExceeded knows; any
 * other error ends the process with it. `hang` writes a create and, before its COMMIT, prints
 * IN-TRANSACTION and blocks until it is killed.
 */
import { writeSync } from 'node:fs';
import { isLimitExceeded } from '../../src/limits/index.js';
import { clients } from './clients.js';

const [client, url, command, project, count] = process.argv.slice(2);
const open = client === undefined ? undefined : clients[client]?.open;
if (!open || !url || !project || (command !== 'create' && command !== 'hang')) {
  console.error('usage: worker.ts pg|better-sqlite3|kysely|drizzle URL create PROJECT COUNT | hang PROJECT');
  process.exit(2);
}
const host = await open(url);
if (command === 'hang') {
  await host.create(project, 'doomed', () => {
    writeSync(1, 'IN-TRANSACTION\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
  process.exit(3);
}
console.log('READY');
const outcomes = await Promise.all(
  Array.from({ length: Number(count) }, (_, i) =>
    host.create(project, `vm-${process.pid}-${i}`).then(
      () => 'created' as const,
      (error: unknown) => {
        if (isLimitExceeded(error)) return 'refused' as const;
        throw error;
      },
    ),
  ),
);
await host.close();
console.log(
  JSON.stringify({
    created: outcomes.filter((o) => o === 'created').length,
    refused: outcomes.filter((o) => o === 'refused').length,
  }),
);
