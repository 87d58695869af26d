/**
 * The ledger's public types: what the library returns and the API serializes. The wire types
 * are the static types of the API's schemas (src/schemas), so a field is declared once; the
 * rest (checked inputs, options, pages, discrepancies) are the ledger's own.
 */
import type { Static } from '@sinclair/typebox';
import type { Line } from '../domain/decision.js';
import type * as wire from '../schemas/index.js';

export type { Line };

export type ResourceKind = Static<typeof wire.Kind>;
export type ResourceKindInput = Static<typeof wire.KindBody>;
export type KindFormat = ResourceKind['format'];
export type Organization = Static<typeof wire.Organization>;
export type Project = Static<typeof wire.Project>;
export type QuotaUsage = Static<typeof wire.QuotaUsage>;
export type QuotaSource = QuotaUsage['source'];
export type QuotaSet = Static<typeof wire.Quotas>;
export type QuotaInput = Static<typeof wire.QuotaBody>['quotas'][number];
export type ProjectQuotaUsage = Static<typeof wire.ProjectQuotaUsage>;
export type ProjectQuotaSet = Static<typeof wire.ProjectQuotas>;
export type ProjectQuotaInput = Static<typeof wire.ProjectQuotaBody>['quotas'][number];
export type LimitRegion = Static<typeof wire.ProjectLimitRegion>;
export type Limit = Static<typeof wire.ProjectLimit>;
export type LimitRegionInput = Static<typeof wire.LimitBody>['regions'][number];
export type Allocation = Static<typeof wire.Allocation>;
export type ResourceRef = Allocation['resource'];
export type Hold = Static<typeof wire.Hold>;
export type HoldStatus = Hold['status'];
export type AllocationInput = Static<typeof wire.AllocationBody>;
export type LineInput = AllocationInput['allocations'][number];
export type QuantityInput = Static<typeof wire.QuantityInput>;
export type HoldInput = Static<typeof wire.HoldBody>;
export type ConfirmInput = Static<typeof wire.ConfirmBody>;

export interface CheckedProjectQuotaInput {
  kind: string;
  cap: number | null;
  guaranteed: number;
}

export interface CheckedLimitRegion {
  region: string;
  limit: number;
}

export interface CheckedQuotaInput {
  kind: string;
  quantity: number | null;
}

/** An allocation input after validation: quantities parsed to base units. */
export interface CheckedAllocationInput {
  resource: ResourceRef;
  allocations: Line[];
}

export interface CheckedHoldInput extends CheckedAllocationInput {
  ttlSeconds: number;
}

/** Options of every write. */
export interface WriteOptions<T = unknown> {
  /** Who asks; recorded on the rows and in the journal. Defaults to "system". */
  principal?: string;
  /** Only change the target if its generation is still this one (If-Match). */
  ifGeneration?: number;
  /**
   * Decide and answer as the real request would be answered now, then undo: nothing is
   * written or journaled (decisions only: allocations, holds, quotas, project quotas, batches).
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
