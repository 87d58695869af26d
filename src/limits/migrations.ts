import type { Migration } from '../store/migrations.js';

/**
 * The limits mixin's own tables, created next to a host service's tables and recorded in
 * their own migrations table (`allot_limits_migrations`), so they never meet the host's.
 * Every name starts with `allot_limit`.
 */
export const limitsMigrationsTable = 'allot_limits_migrations';

export const limitsMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'trackers',
    statements: [
      // One tracker per (region, project, resource type): the limit the host enforces there and
      // how many of the host's resources it counts. Hidden: only service-admins see it.
      `CREATE TABLE allot_limit_trackers (
        region TEXT NOT NULL,
        project TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        limit_value BIGINT NOT NULL CHECK (limit_value >= 0),
        used BIGINT NOT NULL DEFAULT 0 CHECK (used >= 0),
        generation BIGINT NOT NULL DEFAULT 1,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        recounted_at BIGINT NULL,
        PRIMARY KEY (region, project, resource_type)
      )`,
      // Creates and deletes on registered tables, noted by triggers during a limits
      // transaction (tx: its token) and folded into the trackers when it ends.
      `CREATE TABLE allot_limit_deltas (
        tx TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        project TEXT NOT NULL,
        delta BIGINT NOT NULL
      )`,
      `CREATE INDEX allot_limit_deltas_by_tx ON allot_limit_deltas (tx)`,
      // SQLite only: the token of the limits transaction in progress (SQLite has one writer).
      `CREATE TABLE allot_limit_tx (tx TEXT PRIMARY KEY)`,
      // What changed a tracker other than counting: limits set, trackers deleted, and every
      // drift a recount found, with the stored and the true count.
      `CREATE TABLE allot_limit_journal (
        at BIGINT NOT NULL,
        region TEXT NOT NULL,
        project TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
      )`,
      `CREATE INDEX allot_limit_journal_by_tracker ON allot_limit_journal (region, project, resource_type, at)`,
    ],
  },
  {
    version: 2,
    name: 'enforced in the database',
    statements: [
      // The deltas now carry their region (the triggers apply them to its trackers themselves,
      // whatever client wrote the rows), and no limits-transaction token is needed any more.
      `ALTER TABLE allot_limit_deltas ADD COLUMN region TEXT NOT NULL DEFAULT ''`,
      `DROP TABLE allot_limit_tx`,
    ],
  },
  {
    version: 3,
    name: 'deltas by id',
    statements: [
      // PostgreSQL: each firing of the deferred apply trigger but the first finds its own row
      // gone by this id, in one lookup. (SQLite applies each row as it comes: it leaves id NULL.)
      `ALTER TABLE allot_limit_deltas ADD COLUMN id BIGSERIAL`,
      `CREATE INDEX allot_limit_deltas_by_id ON allot_limit_deltas (id)`,
    ],
  },
];
