/**
 * The chaos: every 2–4 s (at random) one server is SIGKILLed and started again, on its old
 * port or a new one, while at most one is down at a time; a server that exits by itself is
 * started again too (and recorded as a crash). The full run also restarts PostgreSQL once,
 * in the middle of the load.
 */
import { restartPostgres } from './database.js';
import type { Random } from './random.js';
import { sleep } from './random.js';
import type { ServerPool } from './servers.js';

export interface DisruptionOptions {
  pool: ServerPool;
  random: Random;
  loadStartedAt: number;
  loadEndsAt: number;
  databaseRestart: boolean;
  postgresUrl: string;
  log: (line: string) => void;
  verbose: boolean;
}

export interface DisruptionReport {
  databaseRestarts: number;
  databaseRestartMs: number;
  restartMs: number[];
}

const startDeadlineMs = 60_000;

export async function disrupt(options: DisruptionOptions): Promise<DisruptionReport> {
  const { pool, random, log, verbose } = options;
  const report: DisruptionReport = { databaseRestarts: 0, databaseRestartMs: 0, restartMs: [] };
  const restarting = new Map<number, Promise<void>>();
  let failure: unknown;

  const restart = (index: number, port: number, why: string) => {
    const began = Date.now();
    const started = pool
      .start(index, port, Date.now() + startDeadlineMs)
      .then(() => {
        report.restartMs.push(Date.now() - began);
        if (verbose) log(`server ${index} ${why}: up again at ${pool.slots[index]!.url} after ${Date.now() - began} ms`);
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => restarting.delete(index));
    restarting.set(index, started);
  };

  const databaseRestart = (async () => {
    if (!options.databaseRestart) return;
    await sleep((options.loadStartedAt + options.loadEndsAt) / 2 - Date.now());
    const began = Date.now();
    log('restarting PostgreSQL');
    try {
      await restartPostgres(options.postgresUrl);
      report.databaseRestarts += 1;
      report.databaseRestartMs = Date.now() - began;
      log(`PostgreSQL is back after ${report.databaseRestartMs} ms`);
    } catch (error) {
      failure ??= new Error(`the PostgreSQL restart failed: ${String(error)}`);
    }
  })();

  for (;;) {
    await sleep(Math.min(random.int(2_000, 4_000), options.loadEndsAt - Date.now()));
    if (failure !== undefined || Date.now() >= options.loadEndsAt) break;
    for (const slot of pool.slots) {
      if (slot.phase === 'down' && !restarting.has(slot.index)) restart(slot.index, slot.port, 'exited by itself');
    }
    if (!pool.allUp()) continue;
    const slot = random.pick(pool.slots);
    const port = slot.port;
    const pid = slot.child?.pid;
    await pool.kill(slot.index);
    const samePort = random.chance(0.5);
    if (verbose) log(`killed server ${slot.index} (pid ${pid}, port ${port}); restarting on ${samePort ? 'the same port' : 'a new port'}`);
    await sleep(random.int(0, 500));
    restart(slot.index, samePort ? port : 0, 'killed');
  }
  await databaseRestart;
  // Leave every server up for the drain.
  while (restarting.size > 0) await Promise.all([...restarting.values()]);
  for (const slot of pool.slots) {
    if (slot.phase === 'down') restart(slot.index, slot.port, 'was down at the end of the load');
  }
  while (restarting.size > 0) await Promise.all([...restarting.values()]);
  if (failure !== undefined) throw failure;
  return report;
}
