/**
 * What every example host in this folder offers, whichever database client it is written with:
 * its own tables (`instances`, and `events` beside them), adopted by the limits mixin once at
 * start, then creates and deletes written with the host's client alone. A create writes the
 * instance and an `events` row in one transaction of the host's own; the database refuses it
 * past the project's limit, and the host recognizes the refusal with `isLimitExceeded`.
 */
// A host outside this repository imports these from 'allot/limits'.
import { adoptLimits } from '../../src/limits/index.js';

export interface Host {
  /**
   * Creates an instance (and its `created` event) in one transaction; `beforeCommit` runs in
   * it after the writes (synchronously: some clients' transactions are). Resolves to the id,
   * or rejects with the client's own error.
   */
  create(project: string, name: string, beforeCommit?: () => void): Promise<string>;
  /** Deletes an instance (and writes its `deleted` event); false if there was none. */
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export const region = 'eu-1';

/** The tables whose rows count as resources: the one line of configuration a host adds. */
export const limitedTables = [{ table: 'instances', resourceType: 'instances', projectColumn: 'project_id' }];

/** Adoption: the mixin's migration and the triggers on `instances`, in the host's database. */
export const adopt = (url: string) => adoptLimits({ db: url, region, tables: limitedTables });

/**
 * The host's own schema (its migration, in the host's hands). SQL both engines take; the
 * project column must be NOT NULL: a row is counted in its project.
 */
export const hostTables = [
  'CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS events (instance_id TEXT NOT NULL, kind TEXT NOT NULL)',
];

/** A `pg` configuration from allot's test URL form (`postgres://…?schema=S`). */
export function pgConfig(url: string): { connectionString: string; options?: string } {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  return { connectionString: parsed.toString(), ...(schema ? { options: `-c search_path=${schema}` } : {}) };
}

/** The file of a `sqlite:PATH` URL. */
export const sqlitePath = (url: string) => url.slice('sqlite:'.length);
