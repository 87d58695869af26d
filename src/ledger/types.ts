/** The ledger's public types: what the library returns and the API serializes. */
import type { Line } from '../domain/decision.js';

export type { Line };

export type KindFormat = 'decimal' | 'binary';

export interface ResourceKind {
  name: string;
  displayName: string;
  description: string;
  /** The quota of an organization that has none of its own; null means unlimited. */
  default: number | null;
  format: KindFormat;
  createdAt: string;
  updatedAt: string;
}

export interface ResourceKindInput {
  displayName: string;
  description?: string;
  default?: QuantityInput | null;
  format?: KindFormat;
}

export interface Organization {
  id: string;
  displayName: string;
  createdAt: string;
  updatedAt: string;
}

export interface Project {
  organization: string;
  id: string;
  displayName: string;
  createdAt: string;
  updatedAt: string;
}

/** Where a kind's limit comes from in one organization. */
export type QuotaSource = 'quota' | 'default' | 'unlimited';

export interface QuotaUsage {
  kind: string;
  displayName: string;
  description: string;
  default: number | null;
  format: KindFormat;
  /** The limit in force; null when the kind is unlimited for this organization. */
  quantity: number | null;
  source: QuotaSource;
  /** committed + reserved + held. */
  used: number;
  committed: number;
  reserved: number;
  /** Taken by pending holds. */
  held: number;
  /** Bumped by every change of this kind's quota in this organization. */
  generation: number;
  /** Who last set this kind's quota here (null: never set, the default applies). */
  updatedBy: string | null;
  /** quantity - used, never below 0; null when unlimited. */
  free: number | null;
  /** The sum of the projects' guarantees of this kind (carved out of the quantity). */
  guaranteed: number;
  /**
   * What a project with no guarantee can still take: quantity - used - what the guarantees
   * keep back unused, never below 0; null when unlimited.
   */
  freeForAnyProject: number | null;
  /** Usage is above the limit (after a forced cut): only changes that lower it pass. */
  overLimit: boolean;
}

export interface QuotaSet {
  organization: string;
  /** Bumped by every quota change in the organization: the ETag of the set. */
  generation: number;
  quotas: QuotaUsage[];
}

/** One kind of a project's envelope: its cap and guarantee, its usage, what it can take. */
export interface ProjectQuotaUsage {
  kind: string;
  displayName: string;
  format: KindFormat;
  /** The most the project may use; null: no cap (the organization's quota still applies). */
  cap: number | null;
  /** Carved out of the organization's quota for this project alone; 0: none. */
  guaranteed: number;
  used: number;
  committed: number;
  reserved: number;
  held: number;
  /**
   * What the project can take right now: the least of what its cap and the organization
   * leave (less what other projects' guarantees keep back); null when neither limits it.
   */
  available: number | null;
  /** Usage is above the cap (after a forced cut): only changes that lower it pass. */
  overCap: boolean;
  /** Who last set this kind's cap or guarantee (null: never set). */
  updatedBy: string | null;
}

export interface ProjectQuotaSet {
  organization: string;
  project: string;
  /** Bumped by every change of the project's caps and guarantees: the ETag of the set. */
  generation: number;
  quotas: ProjectQuotaUsage[];
}

export interface ProjectQuotaInput {
  kind: string;
  /** Absent or null: no cap. */
  cap?: QuantityInput | null;
  /** Absent or null: no guarantee. */
  guaranteed?: QuantityInput | null;
}

export interface CheckedProjectQuotaInput {
  kind: string;
  cap: number | null;
  guaranteed: number;
}

/** One region of a limit. */
export interface LimitRegion {
  region: string;
  /**
   * How the controller last fared with this region's host of the limit's service: ok, stale
   * (its usage may be old), unknown (never tried), none (no host registered).
   */
  hostStatus: 'ok' | 'stale' | 'unknown' | 'none';
  /** What a service-admin set. */
  configuredLimit: number;
  /** What the region's host enforces: max(configuredLimit, usage) — never below what is in use. */
  activeLimit: number;
  /** The last usage the region reported (0 until it reports). */
  usage: number;
  /** activeLimit − configuredLimit: above 0 after a limit was lowered below usage. */
  gap: number;
  usageReportedAt: string | null;
  /** Bumped by every change of the configured limit. */
  generation: number;
  updatedBy: string;
  updatedAt: string;
}

/** A project's limit of one resource type of one service, per region. */
export interface Limit {
  organization: string;
  project: string;
  service: string;
  resourceType: string;
  /**
   * A bound across all its regions (null: none). The regions' configured limits are then the
   * shares of it the controller gives them, never adding up to more than it.
   */
  global: number | null;
  regions: LimitRegion[];
}

export interface LimitRegionInput {
  region: string;
  /** Required, unless the limit has a global bound (then absent). */
  limit?: QuantityInput;
}

export interface CheckedLimitRegion {
  region: string;
  limit: number;
}

export interface CheckedQuotaInput {
  kind: string;
  quantity: number | null;
}

export interface QuotaInput {
  kind: string;
  /** The new quota; null removes the organization's own quota, so the kind's default applies. */
  quantity: QuantityInput | null;
}

export interface ResourceRef {
  kind: string;
  id: string;
}

/** A quantity as callers may send it: an integer, or a string such as "1Ti" or "2k". */
export type QuantityInput = number | string;

export interface LineInput {
  kind: string;
  committed?: QuantityInput;
  reserved?: QuantityInput;
}

export interface AllocationInput {
  resource: ResourceRef;
  allocations: LineInput[];
}

/** An allocation input after validation: quantities parsed to base units. */
export interface CheckedAllocationInput {
  resource: ResourceRef;
  allocations: Line[];
}

export interface Allocation {
  id: string;
  organization: string;
  project: string;
  resource: ResourceRef;
  allocations: Line[];
  /** Bumped by every change: the allocation's ETag. */
  generation: number;
  createdBy: string;
  updatedBy: string;
  createdAt: string;
  updatedAt: string;
}

/** pending until exactly one of confirm, release or expiry resolves it. */
export type HoldStatus = 'pending' | 'confirmed' | 'released' | 'expired';

export interface Hold extends Allocation {
  status: HoldStatus;
  expiresAt: string;
  resolvedAt: string | null;
}

export interface HoldInput extends AllocationInput {
  /** How long the hold lasts unless confirmed or released: 1 s to 7 days. */
  ttlSeconds: number;
}

export interface CheckedHoldInput extends CheckedAllocationInput {
  ttlSeconds: number;
}

/** What to confirm of a hold; absent means everything it holds. */
export interface ConfirmInput {
  allocations?: LineInput[];
}

/** Options of every write. */
export interface WriteOptions<T = unknown> {
  /** Who asks; recorded on the rows and in the journal. Defaults to "system". */
  principal?: string;
  /** Only change the target if its generation is still this one (If-Match). */
  ifGeneration?: number;
  /**
   * Decide and answer as the real request would be answered now, then undo: nothing is
   * written or journaled (decisions only: allocations, holds, quotas, envelopes, batches).
   */
  dryRun?: boolean;
  /**
   * Runs inside the write's transaction after it succeeded, before commit: whatever it writes
   * commits or rolls back together with the change (the API stores idempotent responses here).
   * Not for decisions, whose idempotency keys the group commit stores itself.
   */
  record?: (tx: import('../store/store.js').Executor, result: T) => Promise<void>;
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface PageRequest {
  limit?: number;
  cursor?: string;
}

export interface AllocationFilter extends PageRequest {
  /** Only for an organization-wide listing: this project's allocations. */
  project?: string;
  resourceKind?: string;
  resourceId?: string;
}

export interface JournalDiscrepancy {
  organization: string;
  /** Set when a project's counter differs from its replayed journal. */
  project?: string;
  /** The kind whose replay differs; null for a gap in the revisions. */
  kind: string | null;
  problem: string;
}

export interface CounterDiscrepancy {
  organization: string;
  /** Set for a project's counter; absent for the organization's. */
  project?: string;
  kind: string;
  stored: CounterValues;
  actual: CounterValues;
}

export interface CounterValues {
  committed: number;
  reserved: number;
  held: number;
  /** An organization's guarantees' sum and shortfall: present only when they differ. */
  guaranteed?: number;
  shortfall?: number;
}
