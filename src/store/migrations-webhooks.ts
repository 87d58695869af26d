import type { Migration } from './migrate.js';

/** Webhook subscriptions, where each one's delivery stands, and refusals for the digest. */
export const webhooksMigration: Migration = {
  version: 11,
  name: 'webhook subscriptions',
  statements: [
    // organization_id null: every organization's events (made by a service-admin). The secret
    // signs deliveries, so it is kept as is (unlike tokens, which are kept as digests).
    `CREATE TABLE subscriptions (
      id TEXT PRIMARY KEY,
      organization_id TEXT NULL REFERENCES organizations (id),
      url TEXT NOT NULL,
      secret TEXT NOT NULL,
      journal TEXT NULL,
      thresholds TEXT NOT NULL,
      denials_interval_ms BIGINT NULL,
      created_by TEXT NOT NULL,
      created_at BIGINT NOT NULL
    )`,
    // One row per subscription and organization: the last journal revision whose events were
    // delivered, the threshold state as of that revision (JSON), and the retry schedule.
    // A process delivers a cursor only while it holds its lease.
    `CREATE TABLE subscription_cursors (
      subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
      organization_id TEXT NOT NULL REFERENCES organizations (id),
      revision BIGINT NOT NULL,
      state TEXT NOT NULL,
      digest_from BIGINT NOT NULL,
      attempts BIGINT NOT NULL DEFAULT 0,
      next_attempt_at BIGINT NOT NULL DEFAULT 0,
      failing_since BIGINT NULL,
      last_error TEXT NULL,
      delivered_at BIGINT NULL,
      leased_by TEXT NULL,
      leased_until BIGINT NOT NULL DEFAULT 0,
      PRIMARY KEY (organization_id, subscription_id)
    )`,
    `CREATE INDEX subscription_cursors_by_subscription ON subscription_cursors (subscription_id)`,
    // Refused decisions per minute, kind and scope (project '' for the organization's quota),
    // counted in memory and added here each second; the denial digest reads them.
    `CREATE TABLE denials (
      organization_id TEXT NOT NULL,
      minute BIGINT NOT NULL,
      kind TEXT NOT NULL,
      scope TEXT NOT NULL,
      project_id TEXT NOT NULL,
      count BIGINT NOT NULL,
      PRIMARY KEY (organization_id, minute, kind, scope, project_id)
    )`,
  ],
};
