/**
 * The reliability harness (`npm run chaos`): allot under a random concurrent load while its
 * server processes are SIGKILLed and restarted (and, in the full run, PostgreSQL restarted),
 * then a check of the books from the outside. Bounded in time; stops by itself.
 *
 *   tsx bench/chaos.ts [--quick] [--engine postgres|sqlite] [--servers N] [--seconds S] [--seed X] [--clients N] [--keep]
 *
 * 1. A fresh PostgreSQL schema (or SQLite file); N `allot serve` processes on it (the built command, which
 *    `npm run chaos` builds first: a restart is then a fraction of a second, not tsx's two).
 * 2. Kinds, three organizations with two projects each, small quotas.
 * 3. Clients (24) send random allocation creates, replaces and deletes, hold creates,
 *    confirms (in full or in part) and releases with 1–3 s lifetimes, quota changes (never
 *    below usage as read, never forced), and batches of creates, spread over the live servers. Every mutating
 *    request carries an idempotency key; an unknown outcome is retried with the same key.
 * 4. Every 2–4 s one server is SIGKILLed and restarted on its port or a new one; the full run
 *    restarts PostgreSQL once in the middle.
 * 5. The load stops, unanswered requests get a last chance, the servers stop, the holds
 *    expire and are swept; then a fresh ledger checks the books (bench/chaos/check.ts).
 *
 * Prints `chaos: N operations (…), K kills, D database restarts, V violations` last; exits 0
 * when there is no violation, 1 when there is one, 2 when the harness itself failed.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { idempotencyClaimStaleMs } from '../src/domain/constants.js';
import { openLedger } from '../src/index.js';
import { injectFault, resolveUnanswered } from './chaos/aftermath.js';
import { checkBooks, type CheckReport } from './chaos/check.js';
import { runDatabase } from './chaos/database.js';
import { disrupt, type DisruptionReport } from './chaos/disruption.js';
import { closeConnections } from './chaos/http.js';
import { runLoad, type LoadContext } from './chaos/load.js';
import { Model, Stats, Violations } from './chaos/model.js';
import { parseOptions, usage, type ChaosOptions } from './chaos/options.js';
import { Random, sleep } from './chaos/random.js';
import { crashCause, ServerPool } from './chaos/servers.js';
import { organizations, setUpBooks } from './chaos/tenancy.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const started = Date.now();
const log = (line: string) => process.stderr.write(`[chaos ${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** How long unanswered operations keep trying after the load: past the servers' stale-claim
 * timeout in the full run; a few seconds in the quick one (the rest are resolved from the
 * stored answers afterwards). */
const drainMs = (options: ChaosOptions) => (options.quick ? 6_000 : idempotencyClaimStaleMs + 5_000);

/** What an interrupted run must clean up. */
interface Running {
  pool?: ServerPool;
  dropSchema?: () => Promise<void>;
}

async function main(options: ChaosOptions, running: Running): Promise<number> {
  const runId = randomBytes(4).toString('hex');
  const database = runDatabase(options.engine, options.postgresUrl, runId);
  const db = database.url;
  const adminToken = randomBytes(18).toString('base64url');
  const random = new Random(options.seed);
  const model = new Model();
  const stats = new Stats();
  const violations = new Violations();
  log(
    `seed ${options.seed}, ${database.name}, ${plural(options.servers, 'server')}, ` +
      `${plural(options.clients, 'client')}, ${options.seconds} s of load` +
      `${options.databaseRestart ? ', one PostgreSQL restart' : ''}`,
  );

  await database.create();
  if (!options.keep) running.dropSchema = () => database.drop();
  let servers: ServerPool | undefined;
  try {
    // Migrate once up front, so the servers start side by side without racing for it.
    await (await openLedger({ db })).close();
    servers = new ServerPool(options.servers, { root, db, adminToken, log });
    running.pool = servers;
    await Promise.all(servers.slots.map((slot) => servers!.start(slot.index, 0, Date.now() + 60_000)));
    log(`servers up: ${servers.live().join(' ')}`);
    await setUpBooks(servers.live()[0]!, adminToken, random);

    const loadStartedAt = Date.now();
    const context: LoadContext = {
      pool: servers,
      adminToken,
      runId,
      seed: options.seed,
      model,
      stats,
      violations,
      loadEndsAt: loadStartedAt + options.seconds * 1000,
      giveUpAt: loadStartedAt + options.seconds * 1000 + drainMs(options),
      tasks: new Set(),
    };
    const progress = setInterval(
      () => log(`${stats.operations} operations, ${stats.acknowledged} acknowledged, ${servers!.kills} kills, ${servers!.live().length} servers up`),
      10_000,
    );
    let disruption: DisruptionReport;
    try {
      const chaos = disrupt({
        pool: servers,
        random,
        loadStartedAt,
        loadEndsAt: context.loadEndsAt,
        databaseRestart: options.databaseRestart,
        postgresUrl: options.postgresUrl,
        log,
        verbose: options.verbose,
      });
      // A failing disruption (a server that cannot start again) fails the run, but only
      // after the clients stop.
      chaos.catch(() => undefined);
      await runLoad(context, options.clients);
      disruption = await chaos;
      log(`load over: ${stats.operations} operations; waiting for ${context.tasks.size} still without an answer`);
      while (context.tasks.size > 0) await Promise.all([...context.tasks]);
    } finally {
      clearInterval(progress);
    }
    log(`stopping the servers`);
    await servers.stopAll();
    closeConnections();

    await resolveUnanswered({ model, stats, violations }, db);
    for (const crash of servers.crashes) {
      violations.add(
        'server-crash',
        `server ${crash.server} (pid ${crash.pid}) exited by itself (${crash.code ?? crash.signal}): ${crashCause(crash.stderr)}`,
      );
    }

    // Every hold the clients know of (an unanswered create without a stored answer made
    // none) expires within its 1–3 s; then sweeps resolve the expired ones.
    await sleep(model.latestHoldExpiryMs + 50 - Date.now());
    log('checking the books');
    const ledger = await openLedger({ db });
    let report: CheckReport;
    try {
      while ((await ledger.sweepExpiredHolds()) > 0);
      if (options.injectFault !== null) {
        log(`injecting fault "${options.injectFault}": ${await injectFault(options.injectFault, ledger, model, db)}`);
      }
      report = await checkBooks(ledger, organizations.map((o) => o.id), model, violations);
    } finally {
      await ledger.close();
    }
    // And the operator's own check: `allot verify` must agree (recount and journal replay).
    const verify = spawnSync(process.execPath, ['dist/cli/main.js', 'verify', '--db', db], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, ALLOT_DB: '' },
    });
    if (verify.status !== 0) {
      violations.add('allot-verify', `allot verify exited ${verify.status}: ${verify.stdout}${verify.stderr}`.slice(0, 2000));
    }

    const out = (line: string) => process.stdout.write(`${line}\n`);
    const kinds = Object.entries(stats.byKind)
      .map(([kind, c]) => `${kind} ${c.acknowledged}/${c.denied}`)
      .join(', ');
    out(`chaos: seed ${options.seed}, ${database.name}${options.keep ? ' (kept)' : ''}, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    out(`chaos: acknowledged/denied by operation: ${kinds}`);
    out(
      `chaos: ${stats.attempts} requests, ${stats.connectionErrors} connection errors, ${stats.serverErrors} 5xx, ` +
        `${stats.inProgress} request-in-progress; ${stats.replaysChecked} replays compared; ` +
        `${stats.unresolved} never answered (${stats.resolvedFromStore} by their stored answer, ${stats.resolvedNoEffect} without effect)`,
    );
    out(
      `chaos: ${servers.starts} server starts (${servers.failedStarts} failed attempts), restart to listening ` +
        `${disruption.restartMs.length ? `${Math.min(...disruption.restartMs)}–${Math.max(...disruption.restartMs)} ms` : 'n/a'}` +
        `${disruption.databaseRestarts ? `, PostgreSQL restart ${disruption.databaseRestartMs} ms` : ''}`,
    );
    out(
      `chaos: checked ${report.journalEntries} journal revisions, ${report.entitiesChecked} acknowledged allocations ` +
        `and holds (${report.entitiesUncertain} with an outcome never learnt)`,
    );
    const shown = violations.list.slice(0, 25);
    for (const violation of shown) out(`violation [${violation.check}] ${violation.detail}`);
    if (violations.count > shown.length) out(`… and ${violations.count - shown.length} more violations`);
    out(
      `chaos: ${stats.operations} operations (${stats.acknowledged} acknowledged, ${stats.denied} denied, ` +
        `${stats.retried} retried), ${plural(servers.kills, 'kill')}, ${plural(disruption.databaseRestarts, 'database restart')}, ` +
        `${plural(violations.count, 'violation')}`,
    );
    return violations.count === 0 ? 0 : 1;
  } finally {
    servers?.killAllNow();
    closeConnections();
    if (!options.keep) await database.drop().catch((error: unknown) => log(`could not drop ${database.name}: ${String(error)}`));
  }
}

const running: Running = {};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the servers${running.dropSchema ? ' and dropping the schema' : ''}`);
    running.pool?.killAllNow();
    const timeout = new Promise((resolve) => setTimeout(resolve, 5_000));
    void Promise.race([running.dropSchema?.().catch(() => undefined), timeout]).then(() => process.exit(130));
  });
}

let options: ChaosOptions | 'help';
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n${usage}\n`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
main(options, running).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: the harness failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    running.pool?.killAllNow();
    process.exit(2);
  },
);
