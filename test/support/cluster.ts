/**
 * A PostgreSQL cluster of a test's own (initdb in a temporary directory, on a free port), for
 * what must not touch the shared server: stopping it, changing server-wide settings. Runs the
 * server as the `postgres` user when the tests run as root (PostgreSQL refuses root).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const exec = promisify(execFile);

export interface Cluster {
  /** A URL for allot (database `postgres`, user `postgres`, trust). */
  url: string;
  /** Where it listens: 127.0.0.1 and this port. */
  port: number;
  /** Runs SQL as the superuser on a connection of its own. */
  sql(text: string): Promise<pg.QueryResult>;
  /** A server-wide setting, applied with a reload (ALTER SYSTEM). */
  set(name: string, value: string | null): Promise<void>;
  /** Stops the server at once (like a crash: `-m immediate`) and starts it again. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** A standby's promotion to primary (`pg_ctl promote`), waited for. */
  promote(): Promise<void>;
  destroy(): Promise<void>;
}

async function binDir(): Promise<string> {
  return (await exec('pg_config', ['--bindir'])).stdout.trim();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A new cluster; with `standbyOf`, a streaming standby of that one (`pg_basebackup -R`), which
 * the primary makes synchronous with `set('synchronous_standby_names', '*')`.
 */
export async function startCluster(standbyOf?: Cluster): Promise<Cluster> {
  const bin = await binDir();
  const root = mkdtempSync(join(tmpdir(), 'allot-cluster-'));
  const data = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  const { uid, gid } = asRoot ? await postgresIds() : { uid: -1, gid: -1 };
  if (asRoot) chownSync(root, uid, gid);
  chmodSync(root, 0o700);
  const as = (command: string, args: string[]) =>
    asRoot ? exec('runuser', ['-u', 'postgres', '--', join(bin, command), ...args]) : exec(join(bin, command), args);
  if (standbyOf) {
    await as('pg_basebackup', ['-D', data, '-R', '-X', 'stream', '-h', '127.0.0.1', '-p', String(standbyOf.port), '-U', 'postgres', '--no-sync']);
  } else {
    await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '--no-instructions']);
  }
  const port = await freePort();
  // fsync off: a test's cluster survives a stop (even -m immediate), never a power cut.
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40 -c shared_buffers=16MB -c wal_level=replica -c max_wal_senders=4`;
  const start = async () => void (await as('pg_ctl', ['-D', data, '-o', options, '-w', '-t', '60', '-l', join(root, 'log'), 'start']));
  const stop = async () => void (await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']));
  await start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const sql = async (text: string) => {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await client.query(text);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  return {
    url,
    port,
    sql,
    async set(name, value) {
      await sql(value === null ? `ALTER SYSTEM RESET ${name}` : `ALTER SYSTEM SET ${name} = '${value}'`);
      await sql('SELECT pg_reload_conf()');
    },
    stop,
    start,
    promote: async () => void (await as('pg_ctl', ['-D', data, '-w', 'promote'])),
    async destroy() {
      await stop().catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([exec('id', ['-u', 'postgres']), exec('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}
