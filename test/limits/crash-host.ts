// Goal: a host process for test/limits/crash.test.ts that dies in the middle of a limits
// transaction.
// Method: opens the host's tables and the mixin on the database given as argv[2], starts
// mixin.transaction, inserts the rows named in argv[5…] into project argv[4] of the registered
// table, then prints a marker line and waits forever (until the test kills it with SIGKILL).
// argv[3] says where it stops: "in-work" (inside the host's work) or "after-apply" (after the
// mixin applied the deltas to the tracker, just before COMMIT: the store is wrapped so that the
// end of the work is followed by the marker, with the tracker's used as seen inside, and the
// endless wait).
import { openLimits, openStore, type Store } from '../../src/limits/index.js';
import { createHostTables, instancesTable, region } from './host.js';

const [url, mode, project, ...ids] = process.argv.slice(2);
if (!url || (mode !== 'in-work' && mode !== 'after-apply') || !project || ids.length === 0) {
  console.error('usage: crash-host.ts DB in-work|after-apply PROJECT ID…');
  process.exit(2);
}

const forever = () =>
  new Promise<never>(() => {
    // Keep the event loop alive (a pending promise alone would not).
    setInterval(() => undefined, 1 << 30);
  });

const inner = openStore(url);
let armed = false;
const store: Store = {
  engine: inner.engine,
  dialect: inner.dialect,
  setupStatements: inner.setupStatements,
  isUniqueViolation: (error) => inner.isUniqueViolation(error),
  close: () => inner.close(),
  transaction: (work, options) =>
    inner.transaction(async (tx) => {
      const result = await work(tx);
      if (armed && mode === 'after-apply') {
        const tracker = await tx.get<{ used: number }>('SELECT used FROM allot_limit_trackers WHERE project = ?', [project]);
        console.log(`IN-TRANSACTION after-apply used=${Number(tracker?.used)}`);
        await forever();
      }
      return result;
    }, options),
};

await createHostTables(store);
const mixin = await openLimits({ db: store, region, tables: [instancesTable] });
armed = true;
await mixin.transaction(async (tx) => {
  for (const id of ids) await tx.run('INSERT INTO instances (id, project_id, name) VALUES (?, ?, ?)', [id, project, 'doomed']);
  if (mode === 'in-work') {
    console.log('IN-TRANSACTION in-work');
    await forever();
  }
});
console.error('the transaction committed: it should never get here');
process.exit(3);
