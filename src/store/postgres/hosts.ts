/**
 * Several PostgreSQL hosts in one URL, as libpq writes them:
 * `postgres://user@h1:5432,h2:5433/allot?target_session_attrs=read-write`. node-postgres
 * connects to one host only, so the choice is made here: one pool per host, the one in use
 * kept until it fails, then the next in order. With `target_session_attrs=read-write` (or
 * `primary`) a host is used only if it accepts writes, checked once per new connection: after
 * a failover, the standby that was promoted is found, and a standby still recovering is not
 * written to. A single host is the same with one pool.
 */
import pg from 'pg';
import { AllotError } from '../../domain/errors.js';

export interface HostList {
  /** One URL per host, in order, each with the URL's user, database and parameters. */
  urls: string[];
  /** Only a host that accepts writes (not in recovery) will do. */
  writable: boolean;
}

const sessionAttrs = new Set(['any', 'read-write', 'primary']);

export function parseHosts(url: string): HostList {
  const scheme = /^postgres(?:ql)?:\/\//.exec(url)?.[0];
  if (scheme === undefined) return { urls: [url], writable: false };
  // The authority ends at the path or the query; the user part at its last `@` (a password
  // may hold a raw one).
  const afterScheme = url.slice(scheme.length);
  const end = afterScheme.search(/[/?#]/);
  const authority = end < 0 ? afterScheme : afterScheme.slice(0, end);
  const rest = end < 0 ? '' : afterScheme.slice(end);
  const at = authority.lastIndexOf('@');
  const userinfo = authority.slice(0, at + 1);
  const hosts = authority.slice(at + 1);
  const mark = rest.indexOf('?');
  const [path, query] = mark < 0 ? [rest, ''] : [rest.slice(0, mark), rest.slice(mark + 1)];
  const params = new URLSearchParams(query);
  const attrs = params.get('target_session_attrs') ?? 'any';
  if (!sessionAttrs.has(attrs)) {
    throw new Error(`target_session_attrs=${attrs} in the database URL: allot supports any, read-write and primary`);
  }
  params.delete('target_session_attrs');
  const search = params.size > 0 ? `?${params.toString()}` : '';
  const list = hosts.split(',');
  // An empty host in a list (`h1,,h2`) is a typo, not the default socket.
  if (list.length > 1 && list.some((host) => host === '')) throw new Error('an empty host in the database URL');
  const urls = list.map((host) => `${scheme}${userinfo}${host}${path}${search}`);
  return { urls, writable: attrs !== 'any' };
}

/** The pools of a host list, and which one is in use. */
export class HostPools {
  private readonly pools: pg.Pool[];
  private current = 0;
  private readonly checked = new WeakSet<pg.PoolClient>();

  constructor(
    private readonly hosts: HostList,
    options: Omit<pg.PoolConfig, 'connectionString'>,
  ) {
    this.pools = hosts.urls.map((connectionString) => {
      const pool = new pg.Pool({ ...options, connectionString });
      // An idle client that loses its server must not crash the process; the next query reconnects.
      pool.on('error', () => undefined);
      return pool;
    });
  }

  get inUse(): pg.Pool {
    return this.pools[this.current]!;
  }

  /**
   * A connection to the host in use, or else to the next that answers (and accepts writes
   * when asked). All failing, the last failure is thrown: the caller answers 503.
   */
  async connect(): Promise<{ client: pg.PoolClient; pool: pg.Pool }> {
    let last: unknown;
    for (let tried = 0; tried < this.pools.length; tried += 1) {
      const pool = this.inUse;
      try {
        const client = await pool.connect();
        if (!this.hosts.writable || this.checked.has(client)) return { client, pool };
        // The pool stops listening for the client's errors once it hands it out: a socket that
        // fails during the check must not be an uncaught 'error' event.
        const ignore = () => undefined;
        client.on('error', ignore);
        const readOnly = await isReadOnly(client)
          .catch((error: unknown) => {
            client.release(true);
            throw error;
          })
          .finally(() => client.off('error', ignore));
        if (!readOnly) {
          this.checked.add(client);
          return { client, pool };
        }
        client.release(true);
        last = new AllotError('service-unavailable', 'the database host accepts no writes (a standby): looking for the primary');
      } catch (error) {
        // As libpq: a host that cannot be used (refused, unknown name, timed out, or even a
        // refused login) is passed over for the next; only the last failure is reported.
        last = error;
      }
      this.lost(pool);
    }
    throw last;
  }

  /** The host of `pool` failed: the next one is tried from now on. */
  lost(pool: pg.Pool): void {
    if (this.pools.length > 1 && this.inUse === pool) this.current = (this.current + 1) % this.pools.length;
  }

  async end(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.end()));
  }
}

async function isReadOnly(client: pg.PoolClient): Promise<boolean> {
  const { rows } = await client.query<{ recovering: boolean }>('SELECT pg_is_in_recovery() AS recovering');
  return rows[0]!.recovering;
}
