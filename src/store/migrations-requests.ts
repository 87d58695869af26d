import type { Migration } from './migrate.js';

/** Quota requests and the policies that approve some of them. */
export const requestsMigration: Migration = {
  version: 12,
  name: 'quota requests',
  statements: [
    // open_key is set while a request is pending and cleared when it leaves pending: its unique
    // index allows one open request per organization, scope and kind (NULLs never collide).
    `CREATE TABLE quota_requests (
      id TEXT PRIMARY KEY,
      organization_id TEXT NOT NULL REFERENCES organizations (id),
      project_id TEXT NULL,
      field TEXT NOT NULL CHECK (field IN ('quota', 'cap', 'guaranteed')),
      kind TEXT NOT NULL REFERENCES resource_kinds (name),
      preferred BIGINT NOT NULL,
      current_value BIGINT NULL,
      justification TEXT NOT NULL,
      contact TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'cancelled', 'expired')),
      granted BIGINT NULL,
      reason TEXT NULL,
      open_key TEXT NULL,
      requested_by TEXT NOT NULL,
      requested_at BIGINT NOT NULL,
      expires_at BIGINT NOT NULL,
      decided_by TEXT NULL,
      decided_at BIGINT NULL
    )`,
    `CREATE UNIQUE INDEX quota_requests_open ON quota_requests (open_key)`,
    `CREATE INDEX quota_requests_by_organization ON quota_requests (organization_id, state, id)`,
    `CREATE INDEX quota_requests_pending_by_expiry ON quota_requests (state, expires_at)`,
    // Per kind: what is approved without a person, and how deep a cut may go without force.
    `CREATE TABLE quota_request_policies (
      kind TEXT PRIMARY KEY REFERENCES resource_kinds (name),
      auto_max_increase BIGINT NULL,
      auto_max_increase_percent BIGINT NULL,
      auto_per_period BIGINT NULL,
      auto_period_ms BIGINT NULL,
      decrease_max_percent BIGINT NULL,
      expires_after_ms BIGINT NOT NULL,
      updated_by TEXT NOT NULL,
      updated_at BIGINT NOT NULL
    )`,
  ],
};
