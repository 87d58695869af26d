/** The harness's command line. */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

export const faultKinds = ['counter', 'overcommit', 'lost-write', 'gap'] as const;
export type FaultKind = (typeof faultKinds)[number];

export interface ChaosOptions {
  quick: boolean;
  /** The engine of the run's database: several server processes on one PostgreSQL schema, or on one SQLite file. */
  engine: 'sqlite' | 'postgres';
  servers: number;
  clients: number;
  seconds: number;
  seed: string;
  keep: boolean;
  /** Restart PostgreSQL once in the middle of the load (the full run; `--quick` skips it). */
  databaseRestart: boolean;
  /** After the load, break the books on purpose, to prove the checks can fail. */
  injectFault: FaultKind | null;
  /** The PostgreSQL database the run makes its schema in. */
  postgresUrl: string;
  verbose: boolean;
}

export const usage = `usage: tsx bench/chaos.ts [--quick] [--engine postgres|sqlite] [--servers N] [--seconds S]
                          [--seed X] [--clients N] [--keep] [--no-db-restart] [--verbose]

Runs N allot servers on a fresh PostgreSQL schema (or one SQLite file) under a random
concurrent load, SIGKILLs and restarts them every few seconds (and restarts PostgreSQL once,
unless --quick or on SQLite), then
checks the books: no overcommit at any journal revision, every acknowledged write present,
every counter equal to its recount. Exit 0 when all holds, 1 on a violation, 2 when the
harness itself fails.

  --quick          a short run (25 s of load, no database restart), under a minute in all
  --engine E       postgres (default) or sqlite: N processes on one SQLite file in a temporary directory
  --servers N      server processes (default 3)
  --seconds S      seconds of load (default 120, or 25 with --quick)
  --seed X         seed of the random choices (printed by every run)
  --clients N      concurrent clients (default 24)
  --keep           keep the schema or file afterwards (dropped by default)
  --no-db-restart  skip the PostgreSQL restart of the full run
  --verbose        report every kill and restart
PostgreSQL: ALLOT_CHAOS_PG, else ALLOT_TEST_PG, else postgres://postgres@127.0.0.1:5432/test.`;

function positiveInteger(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > 10_000) {
    throw new Error(`--${name} must be an integer from ${min} to 10000, not "${value}"`);
  }
  return parsed;
}

export function parseOptions(argv: readonly string[]): ChaosOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      engine: { type: 'string' },
      servers: { type: 'string' },
      clients: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      keep: { type: 'boolean', default: false },
      'no-db-restart': { type: 'boolean', default: false },
      // Not in the usage text: for proving the checks (and for the CI test).
      'inject-fault': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return 'help';
  const quick = values.quick ?? false;
  const engine = values.engine ?? 'postgres';
  if (engine !== 'postgres' && engine !== 'sqlite') throw new Error(`--engine must be postgres or sqlite, not "${engine}"`);
  const fault = values['inject-fault'];
  if (fault !== undefined && !(faultKinds as readonly string[]).includes(fault)) {
    throw new Error(`--inject-fault must be one of ${faultKinds.join(', ')}`);
  }
  return {
    quick,
    engine,
    servers: positiveInteger('servers', values.servers, 3),
    clients: positiveInteger('clients', values.clients, 24),
    seconds: positiveInteger('seconds', values.seconds, quick ? 25 : 120),
    seed: values.seed ?? randomBytes(4).toString('hex'),
    keep: values.keep ?? false,
    databaseRestart: engine === 'postgres' && !quick && !(values['no-db-restart'] ?? false),
    injectFault: (fault as FaultKind | undefined) ?? null,
    postgresUrl:
      process.env.ALLOT_CHAOS_PG ?? process.env.ALLOT_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/test',
    verbose: values.verbose ?? false,
  };
}
