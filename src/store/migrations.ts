import { applyMigrations, unappliedMigrations, type Migration } from './migrate.js';
import type { Store } from './store.js';
import { requestsMigration } from './migrations-requests.js';
import { webhooksMigration } from './migrations-webhooks.js';

export type { Migration };

/** The ledger's schema, in order (how they are applied: migrate.ts). */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'ledger',
    statements: [
      `CREATE TABLE resource_kinds (
        name TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        description TEXT NOT NULL,
        default_quota BIGINT NULL,
        format TEXT NOT NULL CHECK (format IN ('decimal', 'binary')),
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      // revision: the organization's last journal revision (gap-free, one per change).
      // quota_generation: bumped by every quota change, the ETag of the quota set.
      `CREATE TABLE organizations (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        revision BIGINT NOT NULL DEFAULT 0,
        quota_generation BIGINT NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      `CREATE TABLE projects (
        organization_id TEXT NOT NULL REFERENCES organizations (id),
        id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (organization_id, id)
      )`,
      // The quota and the usage counter of one organization and kind share a row, so a
      // decision locks and updates one row per kind. quota NULL means "the kind's default".
      // held: what pending holds of this kind take (their committed + reserved).
      `CREATE TABLE quota_counters (
        organization_id TEXT NOT NULL REFERENCES organizations (id),
        kind TEXT NOT NULL REFERENCES resource_kinds (name),
        quota BIGINT NULL CHECK (quota >= 0),
        quota_generation BIGINT NOT NULL DEFAULT 0,
        committed BIGINT NOT NULL DEFAULT 0 CHECK (committed >= 0),
        reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (organization_id, kind)
      )`,
      // Allocations and holds share one table: a hold is a pending allocation (state 'held',
      // with expires_at) that a confirm turns into a live one under the same id. Ended rows
      // stay as tombstones (deleted_at set, and for holds the resolution) so a retried DELETE
      // or confirm is recognised, and the audit trail keeps what was consumed.
      `CREATE TABLE allocations (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        resource_kind TEXT NOT NULL,
        resource_id TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('live', 'held')),
        expires_at BIGINT NULL,
        resolution TEXT NULL CHECK (resolution IN ('confirmed', 'released', 'expired')),
        resolved_at BIGINT NULL,
        generation BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        deleted_at BIGINT NULL,
        FOREIGN KEY (organization_id, project_id) REFERENCES projects (organization_id, id)
      )`,
      // Invariant 3: at most one live allocation per referenced resource in an organization.
      `CREATE UNIQUE INDEX allocations_live_resource
        ON allocations (organization_id, resource_kind, resource_id) WHERE deleted_at IS NULL`,
      `CREATE INDEX allocations_by_project ON allocations (organization_id, project_id, id)`,
      // Finds the pending holds that have expired: per organization inside a decision, and
      // across organizations for the sweeper.
      `CREATE INDEX allocations_pending_expiry ON allocations (organization_id, expires_at)
        WHERE state = 'held' AND deleted_at IS NULL`,
      `CREATE INDEX allocations_expiry ON allocations (expires_at)
        WHERE state = 'held' AND deleted_at IS NULL`,
      `CREATE TABLE allocation_lines (
        allocation_id TEXT NOT NULL REFERENCES allocations (id),
        kind TEXT NOT NULL REFERENCES resource_kinds (name),
        committed BIGINT NOT NULL CHECK (committed >= 0),
        reserved BIGINT NOT NULL CHECK (reserved >= 0),
        PRIMARY KEY (allocation_id, kind)
      )`,
      // The journal: one entry per ledger change, in the change's own transaction, numbered
      // per organization without gaps. changes and deltas are JSON text.
      `CREATE TABLE journal (
        organization_id TEXT NOT NULL REFERENCES organizations (id),
        revision BIGINT NOT NULL,
        project_id TEXT NULL,
        at BIGINT NOT NULL,
        principal TEXT NOT NULL,
        action TEXT NOT NULL,
        subject_id TEXT NULL,
        changes TEXT NOT NULL,
        deltas TEXT NOT NULL,
        PRIMARY KEY (organization_id, revision)
      )`,
      // Idempotency keys: the first response to a key, replayed to its retries. A claim is
      // 'pending' until the request's own transaction stores its response ('done').
      `CREATE TABLE idempotency_keys (
        principal TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        claim_token TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done')),
        status BIGINT NULL,
        headers TEXT NULL,
        body TEXT NULL,
        claimed_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (principal, idempotency_key)
      )`,
      `CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at)`,
    ],
  },
  {
    version: 2,
    name: 'access',
    statements: [
      // API tokens: only a SHA-256 digest of each token is kept; the token itself is shown
      // once, when it is created.
      `CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        digest TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('service-admin', 'org-admin', 'project-member', 'service', 'reader')),
        organization_id TEXT NULL,
        project_id TEXT NULL,
        expires_at BIGINT NULL,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT NULL
      )`,
      `ALTER TABLE quota_counters ADD COLUMN updated_by TEXT NULL`,
      // The kind's default, copied onto each counter row and kept in step by the kind's update
      // (which locks the rows): a decision then judges against a limit read under the counter
      // row's own lock, so lowering a default can never race a decision into overcommitting.
      `ALTER TABLE quota_counters ADD COLUMN kind_default BIGINT NULL`,
      `UPDATE quota_counters SET kind_default =
        (SELECT default_quota FROM resource_kinds WHERE name = quota_counters.kind)`,
    ],
  },
  {
    version: 3,
    name: 'project envelopes',
    statements: [
      // One row per project and kind: the project's cap (NULL: none), its guarantee (0: none)
      // and its usage, kept by every decision in the same transaction as the organization's
      // counter. Rows are locked project first, then organization, kind by kind.
      `CREATE TABLE project_counters (
        organization_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        kind TEXT NOT NULL REFERENCES resource_kinds (name),
        cap BIGINT NULL CHECK (cap >= 0),
        guaranteed BIGINT NOT NULL DEFAULT 0 CHECK (guaranteed >= 0),
        committed BIGINT NOT NULL DEFAULT 0 CHECK (committed >= 0),
        reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        held BIGINT NOT NULL DEFAULT 0 CHECK (held >= 0),
        updated_at BIGINT NOT NULL,
        updated_by TEXT NULL,
        PRIMARY KEY (organization_id, project_id, kind),
        FOREIGN KEY (organization_id, project_id) REFERENCES projects (organization_id, id)
      )`,
      // guaranteed: the sum of the projects' guarantees of this kind. shortfall: the sum over
      // projects of max(0, guaranteed - used), the part of the guarantees not yet in use,
      // which no other project may take. Both kept in step under this row's lock, so a
      // decision checks the guarantees of every other project in O(1).
      `ALTER TABLE quota_counters ADD COLUMN guaranteed BIGINT NOT NULL DEFAULT 0`,
      `ALTER TABLE quota_counters ADD COLUMN shortfall BIGINT NOT NULL DEFAULT 0`,
      // A project's cap-and-guarantee set has its own generation (its ETag). A deleted project
      // stays as a row, so its ended allocations keep their project; the id can be reused.
      `ALTER TABLE projects ADD COLUMN quota_generation BIGINT NOT NULL DEFAULT 0`,
      `ALTER TABLE projects ADD COLUMN deleted_at BIGINT NULL`,
      `INSERT INTO project_counters (organization_id, project_id, kind, committed, reserved, held, updated_at)
        SELECT a.organization_id, a.project_id, l.kind,
          SUM(CASE WHEN a.state = 'live' THEN l.committed ELSE 0 END),
          SUM(CASE WHEN a.state = 'live' THEN l.reserved ELSE 0 END),
          SUM(CASE WHEN a.state = 'held' THEN l.committed + l.reserved ELSE 0 END),
          0
        FROM allocation_lines l JOIN allocations a ON a.id = l.allocation_id
        WHERE a.deleted_at IS NULL
        GROUP BY a.organization_id, a.project_id, l.kind`,
    ],
  },
  {
    version: 4,
    name: 'limits',
    statements: [
      // A project's limit of one resource type of one service, per region: what an operator
      // configured, and the usage last reported from that region's host service. The active
      // limit the API shows is max(configured, usage), computed on read: it never drops below
      // what is in use (the host enforces the configured limit).
      `CREATE TABLE limits (
        organization_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        service TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        region TEXT NOT NULL,
        configured BIGINT NOT NULL CHECK (configured >= 0),
        usage BIGINT NOT NULL DEFAULT 0 CHECK (usage >= 0),
        usage_at BIGINT NULL,
        generation BIGINT NOT NULL DEFAULT 1,
        updated_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (organization_id, project_id, service, resource_type, region),
        FOREIGN KEY (organization_id, project_id) REFERENCES projects (organization_id, id)
      )`,
    ],
  },
  {
    version: 5,
    name: 'identity compatibility',
    statements: [
      // What the identity service's API keeps with an allocation and allot does not: its
      // metadata name, description and tags (JSON), written with the allocation.
      `CREATE TABLE compat_allocation_metadata (
        allocation_id TEXT PRIMARY KEY REFERENCES allocations (id),
        name TEXT NOT NULL,
        description TEXT NULL,
        tags TEXT NULL
      )`,
    ],
  },
  {
    version: 6,
    name: 'regions',
    statements: [
      `CREATE TABLE regions (
        name TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
      )`,
      // How the controller reaches a host service's trackers in a region (the mixin's admin
      // routes and the bearer token they accept), and how that went the last time.
      `CREATE TABLE region_hosts (
        region TEXT NOT NULL REFERENCES regions (name),
        service TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        token TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        last_ok_at BIGINT NULL,
        last_error TEXT NULL,
        last_error_at BIGINT NULL,
        PRIMARY KEY (region, service)
      )`,
      `ALTER TABLE projects ADD COLUMN primary_region TEXT NULL REFERENCES regions (name)`,
      `CREATE TABLE project_regions (
        organization_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        region TEXT NOT NULL REFERENCES regions (name),
        PRIMARY KEY (organization_id, project_id, region),
        FOREIGN KEY (organization_id, project_id) REFERENCES projects (organization_id, id)
      )`,
    ],
  },
  {
    version: 7,
    name: 'global limits',
    statements: [
      // A limit bounded across its regions: the regions' configured limits are then shares of
      // it that the controller moves toward the regions using them (escrow), never adding up to
      // more than it.
      `CREATE TABLE global_limits (
        organization_id TEXT NOT NULL,
        project_id TEXT NOT NULL,
        service TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        global_limit BIGINT NOT NULL CHECK (global_limit >= 0),
        updated_by TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (organization_id, project_id, service, resource_type),
        FOREIGN KEY (organization_id, project_id) REFERENCES projects (organization_id, id)
      )`,
    ],
  },
  {
    version: 8,
    name: 'usage history',
    statements: [
      // Samples of usage over time, per organization and series: `quota:<kind>` for the
      // organization's quota of a kind, `limit:<project>/<service>/<type>/<region>` for a limit.
      // resolution 'raw' samples are taken each sampling interval (at is the start of its
      // bucket, so two controllers sampling the same moment write one row) and kept for days;
      // 'hour' rows keep each hour's highest usage for longer.
      `CREATE TABLE usage_history (
        organization_id TEXT NOT NULL,
        series TEXT NOT NULL,
        resolution TEXT NOT NULL CHECK (resolution IN ('raw', 'hour')),
        at BIGINT NOT NULL,
        used BIGINT NOT NULL,
        quantity BIGINT NULL,
        PRIMARY KEY (organization_id, series, resolution, at)
      )`,
      `CREATE INDEX usage_history_by_age ON usage_history (resolution, at)`,
    ],
  },
  {
    version: 9,
    name: 'usage sync per region',
    statements: [
      // When the host's own region's controller last copied its usage into allot, and last
      // failed to. last_ok_at says any controller reached the host; a limit's hostStatus asks
      // these instead, since only the region's own controller refreshes its usage.
      `ALTER TABLE region_hosts ADD COLUMN usage_synced_at BIGINT NULL`,
      `ALTER TABLE region_hosts ADD COLUMN usage_sync_failed_at BIGINT NULL`,
    ],
  },
  {
    version: 10,
    name: 'organization on allocation lines and metadata',
    statements: ['allocation_lines', 'compat_allocation_metadata'].flatMap((table) => [
      `ALTER TABLE ${table} ADD COLUMN organization_id TEXT NULL`,
      `UPDATE ${table} SET organization_id = (SELECT a.organization_id FROM allocations a WHERE a.id = ${table}.allocation_id)`,
    ]),
  },
  webhooksMigration,
  requestsMigration,
];

/** Applies the ledger's pending migrations (or `list`'s, recorded in `table`); returns the versions applied. */
export const migrate = (store: Store, nowMs: number, list: readonly Migration[] = migrations, table = 'schema_migrations') =>
  applyMigrations(store, nowMs, list, table);

/** The versions not applied yet: a server whose schema is behind its code is not ready (`/readyz`). */
export const pendingMigrations = (store: Store, list: readonly Migration[] = migrations, table = 'schema_migrations') =>
  unappliedMigrations(store, list, table);
