/** The benchmark's rows, the machine they were measured on, and the table printed from them. */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import Database from 'better-sqlite3';
import pg from 'pg';
import { postgresUrl } from './fixtures.js';
import { round } from './load.js';

export interface Row {
  name: string;
  engine: string;
  via: 'library' | 'http';
  concurrency: number;
  /** Decisions a second; a batch's entries each count. */
  throughput: number;
  /** Per request (a batch is one request). */
  p50Ms: number;
  p99Ms: number;
  /** Operations per group commit, on average. */
  perCommit: number;
  ceiling: number;
  ratioCeiling: number;
  naive: number | null;
  ratioNaive: number | null;
  /** One client alone: the bare engine's own latency for one transaction. */
  ceilingP50Ms?: number;
  serverRssMb?: number;
}

export function rssMbOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return round(kb / 1024, 1);
}

export async function machine(quick: boolean) {
  let postgres: string | null = null;
  try {
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    postgres = (await client.query('SHOW server_version')).rows[0].server_version as string;
    await client.end();
  } catch {
    postgres = null;
  }
  const memory = new Database(':memory:');
  const sqlite = (memory.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  memory.close();
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGb: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    postgres,
    sqlite,
    date: new Date().toISOString(),
    quick,
  };
}

export function table(all: readonly Row[]): string {
  const header = ['scenario', 'engine', 'via', 'conc', 'decisions/s', 'p50 ms', 'p99 ms', 'per commit', 'ceiling/s', '×ceiling', 'naive/s', '×naive'];
  const lines = all.map((r) => [
    r.name,
    r.engine,
    r.via,
    String(r.concurrency),
    String(r.throughput),
    r.ceilingP50Ms === undefined ? String(r.p50Ms) : `${r.p50Ms} (bare ${r.ceilingP50Ms})`,
    String(r.p99Ms),
    String(r.perCommit),
    String(r.ceiling),
    String(r.ratioCeiling),
    r.naive === null ? '–' : String(r.naive),
    r.ratioNaive === null ? '–' : String(r.ratioNaive),
  ]);
  const format = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [format(header), format(header.map(() => '---')), ...lines.map(format)].join('\n');
}
