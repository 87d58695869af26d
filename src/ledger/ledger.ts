/**
 * The ledger: the one entry point for the API, the CLI and library users. Each method validates
 * its input, opens one transaction, and calls the decision functions inside it; the parent owns
 * the control flow, the leaves do one thing each.
 */
import { assert } from '../domain/assert.js';
import { systemClock, type Clock } from '../domain/clock.js';
import { groupPipelinesPostgres, journalPageSizeMax, pageOfSetsMax, pageSizeDefault, pageSizeMax } from '../domain/constants.js';
import { Engine, type Decision, type DecisionOutcome } from './engine/engine.js';
import { build } from './engine/build.js';
import {
  checkBatchSize,
  mergeOutcomes,
  operationsOf,
  prepareEntry,
  type BatchEntry,
  type BatchMode,
  type BatchResult,
} from './engine/batch.js';
import type { AllocationMetadata, Operation, ResultOf } from './engine/operations.js';
import { invalid, notFound } from '../domain/errors.js';
import { migrate } from '../store/migrations.js';
import { openStore } from '../store/open.js';
import type { Executor, Store } from '../store/store.js';
import { listAllocations, listOrganizationAllocations, readAllocation } from './allocations.js';
import type { WriteContext } from './context.js';
import { listHolds, organizationsWithExpiredHolds, readHold } from './holds.js';
import { readJournal, readJournalTail, readRevision, writeJournal, type JournalEntry } from './journal.js';
import { listKinds, requireKind, upsertKind } from './kinds.js';
import {
  checkTokenInput,
  createToken,
  listTokens,
  principalOfToken,
  revokeToken,
  type Token,
  type TokenGrant,
  type TokenInput,
} from './tokens.js';
import { pageSize } from './pages.js';
import { readQuotas } from './quotas.js';
import { readProjectQuotas } from './project-quotas.js';
import { checkHistoryQuery, readLimitHistory, readQuotaHistory, sampleUsage, type HistorySeries } from './history.js';
import {
  deleteLimit,
  listLimits,
  listOrganizationLimits,
  readLimit,
  reportLimitUsage,
  reportTrackerUsage,
  writeGlobalShares,
  writeLimit,
} from './limits.js';
import {
  allHosts,
  deleteRegionHost,
  hostsOfRegion,
  knownProjects,
  limitsManagedBy,
  listRegions,
  putRegionHost,
  readProjectRegions,
  readRegion,
  recordHostStatus,
  upsertRegion,
  writeProjectRegions,
  type HostAccess,
  type ProjectRegions,
  type Region,
  type RegionHost,
} from './regions.js';
import { findDiscrepancies, repairOrganization, replayJournal } from './recount.js';
import {
  listOrganizations,
  listProjects,
  requireOrganization,
  requireProject,
  upsertOrganization,
  upsertProject,
} from './tenants.js';
import type {
  Allocation,
  AllocationFilter,
  AllocationInput,
  ConfirmInput,
  CounterDiscrepancy,
  Hold,
  HoldInput,
  JournalDiscrepancy,
  Limit,
  LimitRegion,
  LimitRegionInput,
  Organization,
  Page,
  PageRequest,
  Project,
  ProjectQuotaInput,
  ProjectQuotaSet,
  QuantityInput,
  QuotaInput,
  QuotaSet,
  QuotaUsage,
  ResourceKind,
  ResourceKindInput,
  WriteOptions,
} from './types.js';
import {
  checkAllocationFilter,
  checkDescription,
  checkDisplayName,
  checkHostInput,
  checkId,
  checkLimitRegions,
  checkProjectRegionsInput,
  checkQuantity,
} from './validate.js';

export interface LedgerOptions {
  /** `sqlite:PATH` or `postgres://…`; or an open store. */
  db: string | Store;
  clock?: Clock;
  /** Apply pending schema migrations on open (default true). */
  migrate?: boolean;
}

export async function openLedger(options: LedgerOptions): Promise<Ledger> {
  const store = typeof options.db === 'string' ? openStore(options.db) : options.db;
  const clock = options.clock ?? systemClock;
  try {
    if (options.migrate ?? true) await migrate(store, clock.nowMs());
  } catch (error) {
    await store.close();
    throw error;
  }
  return new Ledger(store, clock);
}

/** The principal of writes whose caller names none (library use, the CLI). */
export const systemPrincipal = 'system';

type Listener = (organization: string) => void;

export class Ledger {
  private readonly listeners = new Set<Listener>();
  private readonly credentialListeners = new Set<() => void>();
  /** The write path of decisions: group commit (see engine/engine.ts). */
  readonly engine: Engine;

  constructor(
    readonly store: Store,
    readonly clock: Clock,
  ) {
    this.engine = new Engine(store, clock, {
      pipelines: store.engine === 'sqlite' ? 1 : groupPipelinesPostgres,
      onCommit: (organizations: ReadonlySet<string>, projectsDeleted: boolean) => {
        for (const organization of organizations) for (const listener of this.listeners) listener(organization);
        if (projectsDeleted) for (const listener of this.credentialListeners) listener();
      },
    });
  }

  /**
   * Decides one request or batch through the group commit (the API's path: it brings its
   * idempotency key and reads the outcome of each operation itself).
   */
  decide(decision: Decision): Promise<DecisionOutcome> {
    return this.engine.decide(decision);
  }

  /**
   * Decides many operations of one organization at once: each on its own (`independent`), or
   * all or none (`atomic`). Each entry's outcome comes back in order: applied with its value,
   * refused with its error, or not applied (atomic). At most 1,000 entries.
   */
  async batch(
    organization: string,
    entries: readonly BatchEntry[],
    options: WriteOptions & { mode?: BatchMode } = {},
  ): Promise<BatchResult> {
    const mode = options.mode ?? 'independent';
    checkBatchSize(entries.length);
    const prepared = entries.map((entry) => prepareEntry(organization, entry));
    const operations = operationsOf(prepared, mode);
    if (operations.length === 0) return { mode, results: mergeOutcomes(prepared, mode, []) };
    const outcome = await this.engine.decide({
      operations,
      mode,
      principal: options.principal ?? systemPrincipal,
      dryRun: options.dryRun ?? false,
    });
    assert(outcome.kind === 'decided', 'a decision without a key is decided');
    return { mode, results: mergeOutcomes(prepared, mode, outcome.outcomes) };
  }

  /** One operation, answered as a library call: its result, or its refusal thrown. */
  private async one<O extends Operation>(operation: O, options: WriteOptions = {}): Promise<ResultOf<O>> {
    const outcome = await this.engine.decide({
      operations: [operation],
      mode: 'independent',
      principal: options.principal ?? systemPrincipal,
      dryRun: options.dryRun ?? false,
    });
    assert(outcome.kind === 'decided', 'a decision without a key is decided');
    const [result] = outcome.outcomes;
    if (result!.status === 'refused') throw result!.error;
    assert(result!.status === 'applied', 'a lone operation is applied or refused');
    return result!.value as ResultOf<O>;
  }

  /** Answers every decision already queued, then closes the store; new ones are refused (503). */
  async close(): Promise<void> {
    await this.engine.close();
    await this.store.close();
  }

  // Resource kinds

  putKind(name: string, input: ResourceKindInput) {
    const kind = {
      name: checkId('kind', name),
      displayName: checkDisplayName(input.displayName),
      description: checkDescription(input.description ?? ''),
      default:
        input.default === undefined || input.default === null
          ? null
          : checkQuantity('default', input.default),
      format: input.format ?? 'decimal',
    };
    if (kind.format !== 'decimal' && kind.format !== 'binary') {
      throw invalid('format', 'must be "decimal" or "binary"');
    }
    return this.write({}, ({ tx, dialect, nowMs }) => upsertKind(tx, dialect, kind, nowMs));
  }

  getKind(name: string): Promise<ResourceKind> {
    return this.read((tx) => requireKind(tx, name));
  }

  listKinds(): Promise<ResourceKind[]> {
    return this.read((tx) => listKinds(tx));
  }

  // Organizations and projects

  putOrganization(id: string, input: { displayName?: string }) {
    checkId('organization', id);
    const displayName = checkDisplayName(input.displayName ?? id);
    return this.write({}, ({ tx, nowMs }) => upsertOrganization(tx, id, displayName, nowMs));
  }

  getOrganization(id: string): Promise<Organization> {
    return this.read((tx) => requireOrganization(tx, id));
  }

  /** A page of organizations, by id; `prefix` keeps those whose id starts with it. */
  listOrganizations(page: PageRequest & { prefix?: string } = {}): Promise<Page<Organization>> {
    const limit = pageSize(page);
    return this.read((tx) => listOrganizations(tx, limit, page.cursor, page.prefix));
  }

  putProject(organization: string, id: string, input: { displayName?: string }) {
    checkId('project', id);
    const displayName = checkDisplayName(input.displayName ?? id);
    return this.write({}, ({ tx, nowMs }) =>
      upsertProject(tx, organization, id, displayName, nowMs),
    );
  }

  getProject(organization: string, id: string): Promise<Project> {
    return this.read((tx) => requireProject(tx, organization, id));
  }

  listProjects(organization: string, page: PageRequest = {}): Promise<Page<Project>> {
    const limit = pageSize(page);
    return this.read((tx) => listProjects(tx, organization, limit, page.cursor));
  }

  /**
   * Deletes a project: refused (project-not-empty) while it has live allocations or pending
   * holds, unless `cascade`, which deletes and releases them (journaled). Its caps and
   * guarantees go with it and its project-member tokens are revoked.
   */
  deleteProject(
    organization: string,
    id: string,
    options: WriteOptions & { cascade?: boolean } = {},
  ): Promise<{ allocations: number; holds: number }> {
    return this.one(build.deleteProject(organization, id, options.cascade ?? false), options);
  }

  // Quotas

  async getQuotas(organization: string): Promise<QuotaUsage[]> {
    return (await this.getQuotaSet(organization)).quotas;
  }

  /** Several organizations' quotas, read in one snapshot (a page of the dashboard). */
  getQuotaSets(organizations: readonly string[]): Promise<QuotaSet[]> {
    if (organizations.length > pageOfSetsMax) {
      throw invalid('limit', `must be at most ${pageOfSetsMax} when each organization comes with its quotas`);
    }
    return this.store.transaction(
      async (tx) => {
        const sets: QuotaSet[] = [];
        for (const organization of organizations) sets.push(await readQuotas(tx, organization, this.clock.nowMs()));
        return sets;
      },
      { readOnly: true, snapshot: true },
    );
  }

  getQuotaSet(organization: string): Promise<QuotaSet> {
    // One snapshot: the expired holds left out and the counters are read at the same moment.
    return this.store.transaction((tx) => readQuotas(tx, organization, this.clock.nowMs()), {
      readOnly: true,
      snapshot: true,
    });
  }

  /**
   * Sets the listed kinds' quotas; refused below usage unless `force`. Returns all quotas.
   * `ifGeneration` compares with the quota set's generation.
   */
  setQuotas(
    organization: string,
    inputs: readonly QuotaInput[],
    options: WriteOptions & { force?: boolean } = {},
  ): Promise<QuotaUsage[]> {
    return this.setQuotaSet(organization, inputs, options).then((set) => set.quotas);
  }

  async setQuotaSet(
    organization: string,
    inputs: readonly QuotaInput[],
    options: WriteOptions & { force?: boolean } = {},
  ): Promise<QuotaSet> {
    return this.one(build.setQuotas(organization, inputs, options.force ?? false, options.ifGeneration), options);
  }

  // Project envelopes: caps and guarantees

  getProjectQuotaSet(organization: string, project: string): Promise<ProjectQuotaSet> {
    return this.store.transaction((tx) => readProjectQuotas(tx, organization, project, this.clock.nowMs()), {
      readOnly: true,
      snapshot: true,
    });
  }

  /**
   * Sets the listed kinds' caps and guarantees of a project (absent or null: none). Refused
   * when a cap is below the project's usage or a raised guarantee cannot be met from what the
   * organization has, unless `force`; and always when the guarantees would add up to more
   * than the organization's quota. `ifGeneration` compares with the set's generation.
   */
  async setProjectQuotaSet(
    organization: string,
    project: string,
    inputs: readonly ProjectQuotaInput[],
    options: WriteOptions & { force?: boolean } = {},
  ): Promise<ProjectQuotaSet> {
    return this.one(build.setProjectQuotas(organization, project, inputs, options.force ?? false, options.ifGeneration), options);
  }

  // Regions and where host services run (see regions.ts)

  putRegion(name: string, input: { displayName?: string }) {
    checkId('region', name);
    const displayName = checkDisplayName(input.displayName ?? name);
    return this.write({}, ({ tx, nowMs }) => upsertRegion(tx, name, displayName, nowMs));
  }

  getRegion(name: string): Promise<Region> {
    return this.read((tx) => readRegion(tx, name, this.clock.nowMs()));
  }

  listRegions(): Promise<Region[]> {
    return this.read((tx) => listRegions(tx, this.clock.nowMs()));
  }

  /** Registers how the controller reaches `service`'s trackers in `region`. */
  putRegionHost(region: string, service: string, input: { endpoint: string; token: string }): Promise<RegionHost> {
    checkId('service', service);
    const { endpoint, token } = checkHostInput(input);
    return this.write({}, ({ tx, nowMs }) => putRegionHost(tx, region, service, endpoint, token, nowMs));
  }

  deleteRegionHost(region: string, service: string): Promise<{ deleted: boolean }> {
    return this.write({}, async ({ tx }) => ({ deleted: await deleteRegionHost(tx, region, service) }));
  }

  getProjectRegions(organization: string, project: string): Promise<ProjectRegions> {
    return this.read((tx) => readProjectRegions(tx, organization, project));
  }

  /** Sets a project's primary region and the regions it is enabled in. */
  setProjectRegions(
    organization: string,
    project: string,
    input: { primary: string; enabled: readonly string[] },
    options: WriteOptions<ProjectRegions> = {},
  ): Promise<ProjectRegions> {
    const { primary, enabled } = checkProjectRegionsInput(input);
    return this.write(
      options,
      async (context) => {
        await writeProjectRegions(context, organization, project, primary, enabled);
        return readProjectRegions(context.tx, organization, project);
      },
      organization,
    );
  }

  // For the limits controller

  /** The limits the controller of `region` manages (projects whose primary it is), with their regions. */
  limitsManagedBy(region: string) {
    return this.read((tx) => limitsManagedBy(tx, region));
  }

  /** The hosts registered in a region, with their tokens (never served over the API). */
  hostsOfRegion(region: string): Promise<HostAccess[]> {
    return this.read((tx) => hostsOfRegion(tx, region));
  }

  allHosts(): Promise<HostAccess[]> {
    return this.read((tx) => allHosts(tx));
  }

  recordHostStatus(region: string, service: string, error: string | null): Promise<void> {
    return this.write({}, ({ tx, nowMs }) => recordHostStatus(tx, region, service, error, nowMs));
  }

  /** Which of these project ids exist (not deleted) in some organization. */
  knownProjects(projects: readonly string[]): Promise<Set<string>> {
    return this.read((tx) => knownProjects(tx, projects));
  }

  /** The controller's usage sync: see reportTrackerUsage in limits.ts. */
  reportTrackerUsage(
    region: string,
    service: string,
    project: string,
    resourceType: string,
    used: number,
  ): Promise<{ matched: number; changed: boolean }> {
    return this.write({}, ({ tx, nowMs }) => reportTrackerUsage(tx, region, service, project, resourceType, used, nowMs));
  }

  /** Records the shares of a global bound the controller set on the regions' trackers. */
  recordGlobalShares(
    organization: string,
    project: string,
    service: string,
    resourceType: string,
    shares: readonly { region: string; limit: number; used: number }[],
  ): Promise<void> {
    return this.write({}, ({ tx, nowMs }) => writeGlobalShares(tx, organization, project, service, resourceType, shares, nowMs));
  }

  // Usage history (see history.ts)

  /** Samples every quota's and limit's usage into the history at `bucketMs` (idempotent per bucket). */
  sampleUsage(bucketMs: number): Promise<number> {
    return this.write({}, ({ tx, nowMs }) => sampleUsage(tx, bucketMs, nowMs));
  }

  /** An organization's usage of a kind over time, in steps of `step` seconds (each step's high). */
  getQuotaHistory(
    organization: string,
    kind: string,
    range: { from?: string; to?: string; step?: number } = {},
  ): Promise<HistorySeries> {
    checkId('kind', kind);
    const query = checkHistoryQuery(range.from, range.to, range.step, this.clock.nowMs());
    return this.read((tx) => readQuotaHistory(tx, organization, kind, query, this.clock.nowMs()));
  }

  /** A limit's usage over time, per region (or one region). */
  async getLimitHistory(
    organization: string,
    project: string,
    service: string,
    resourceType: string,
    range: { region?: string; from?: string; to?: string; step?: number } = {},
  ): Promise<HistorySeries[]> {
    const query = checkHistoryQuery(range.from, range.to, range.step, this.clock.nowMs());
    return this.read(async (tx) => {
      const limit = await readLimit(tx, organization, project, service, resourceType, this.clock.nowMs());
      const regions = limit.regions.map((r) => r.region).filter((r) => range.region === undefined || r === range.region);
      if (range.region !== undefined && regions.length === 0) throw notFound(`limit ${service}/${resourceType} in region "${range.region}"`);
      const series: HistorySeries[] = [];
      for (const region of regions) {
        series.push(await readLimitHistory(tx, organization, project, service, resourceType, region, query, this.clock.nowMs()));
      }
      return series;
    });
  }

  // Limits: per project, service, resource type and region (see limits.ts)

  listLimits(organization: string, project: string): Promise<Limit[]> {
    return this.read((tx) => listLimits(tx, organization, project, this.clock.nowMs()));
  }

  /** An organization's limits, a page of projects at a time. */
  listOrganizationLimits(organization: string, filter: PageRequest & { project?: string } = {}): Promise<Page<Limit>> {
    const limit = pageSize(filter);
    if (limit > pageOfSetsMax) throw invalid('limit', `must be at most ${pageOfSetsMax} projects`);
    return this.read((tx) => listOrganizationLimits(tx, organization, filter, limit, this.clock.nowMs()));
  }

  getLimit(organization: string, project: string, service: string, resourceType: string): Promise<Limit> {
    return this.read((tx) => readLimit(tx, organization, project, service, resourceType, this.clock.nowMs()));
  }

  /** Sets the configured limit per listed region; regions not listed lose theirs. */
  setLimit(
    organization: string,
    project: string,
    service: string,
    resourceType: string,
    regions: readonly LimitRegionInput[],
    options: WriteOptions<Limit> & { global?: QuantityInput | null } = {},
  ): Promise<Limit> {
    checkId('service', service);
    checkId('resourceType', resourceType);
    const checked = checkLimitRegions(regions, options.global);
    return this.write(
      options,
      async (context) => {
        await writeLimit(context, organization, project, service, resourceType, checked.regions, checked.global);
        return readLimit(context.tx, organization, project, service, resourceType, context.nowMs);
      },
      organization,
    );
  }

  /** Removes a limit in every region; `{ deleted: false }` if there was none. */
  deleteLimit(
    organization: string,
    project: string,
    service: string,
    resourceType: string,
    options: WriteOptions<{ deleted: boolean }> = {},
  ): Promise<{ deleted: boolean }> {
    return this.write(
      options,
      async (context) => ({ deleted: await deleteLimit(context, organization, project, service, resourceType) }),
      organization,
    );
  }

  /** Records the usage a region's host reports for a limit; returns the region's limit. */
  reportLimitUsage(
    organization: string,
    project: string,
    service: string,
    resourceType: string,
    region: string,
    usage: number,
    options: WriteOptions<LimitRegion> = {},
  ): Promise<LimitRegion> {
    const checked = checkQuantity('usage', usage);
    return this.write(options, (context) =>
      reportLimitUsage(context, organization, project, service, resourceType, region, checked),
    );
  }

  // Allocations

  async createAllocation(
    organization: string,
    project: string,
    input: AllocationInput,
    options: WriteOptions & { metadata?: AllocationMetadata } = {},
  ): Promise<Allocation> {
    return this.one(build.createAllocation(organization, project, input, options.metadata), options);
  }

  async replaceAllocation(
    organization: string,
    project: string,
    id: string,
    input: AllocationInput,
    options: WriteOptions & { metadata?: AllocationMetadata } = {},
  ): Promise<Allocation> {
    return this.one(build.replaceAllocation(organization, project, id, input, options.ifGeneration, options.metadata), options);
  }

  /** Returns `{ deleted: false }` for an allocation that was already deleted. */
  async deleteAllocation(
    organization: string,
    project: string,
    id: string,
    options: WriteOptions = {},
  ): Promise<{ deleted: boolean }> {
    return this.one(build.deleteAllocation(organization, project, id, options.ifGeneration), options);
  }

  /** An organization's live allocations across its projects, filtered like a project's. */
  listOrganizationAllocations(organization: string, filter: AllocationFilter = {}): Promise<Page<Allocation>> {
    const limit = pageSize(filter);
    checkAllocationFilter(filter);
    return this.read((tx) => listOrganizationAllocations(tx, organization, filter, limit));
  }

  getAllocation(organization: string, project: string, id: string): Promise<Allocation> {
    return this.read(async (tx) => {
      await requireProject(tx, organization, project);
      const allocation = await readAllocation(tx, organization, project, id);
      if (!allocation) throw notFound(`allocation "${id}"`);
      return allocation;
    });
  }

  listAllocations(
    organization: string,
    project: string,
    filter: AllocationFilter = {},
  ): Promise<Page<Allocation>> {
    const limit = pageSize(filter);
    checkAllocationFilter(filter);
    return this.read((tx) => listAllocations(tx, organization, project, filter, limit));
  }

  // Holds

  async createHold(
    organization: string,
    project: string,
    input: HoldInput,
    options: WriteOptions = {},
  ): Promise<Hold> {
    return this.one(build.createHold(organization, project, input), options);
  }

  /** Confirms a pending hold, in full or for less; 409 hold-already-resolved otherwise. */
  async confirmHold(
    organization: string,
    project: string,
    id: string,
    input: ConfirmInput = {},
    options: WriteOptions = {},
  ): Promise<Hold> {
    return this.one(build.confirmHold(organization, project, id, input, options.ifGeneration), options);
  }

  async releaseHold(
    organization: string,
    project: string,
    id: string,
    options: WriteOptions = {},
  ): Promise<Hold> {
    return this.one(build.releaseHold(organization, project, id, options.ifGeneration), options);
  }

  getHold(organization: string, project: string, id: string): Promise<Hold> {
    return this.read((tx) => readHold(tx, organization, project, id, this.clock.nowMs()));
  }

  listHolds(organization: string, project: string, page: PageRequest = {}): Promise<Page<Hold>> {
    const limit = pageSize(page);
    return this.read((tx) => listHolds(tx, organization, project, page, limit, this.clock.nowMs()));
  }

  /**
   * Resolves expired holds everywhere (the background sweeper). Decisions never count an
   * expired hold whether or not this has run; it keeps the books tidy and journals expiries.
   */
  async sweepExpiredHolds(): Promise<number> {
    const organizations = await this.read((tx) =>
      organizationsWithExpiredHolds(tx, this.clock.nowMs()),
    );
    const results = await Promise.all(organizations.map((organization) => this.one({ op: 'holds.expire', organization })));
    return results.reduce((sum: number, { expired }: { expired: number }) => sum + expired, 0);
  }

  // Journal

  /** Journal entries of an organization after `afterRevision`, oldest first. */
  readJournal(
    organization: string,
    afterRevision = 0,
    limit = pageSizeDefault,
  ): Promise<JournalEntry[]> {
    if (!Number.isInteger(afterRevision) || afterRevision < 0) {
      throw invalid('after', 'must be a non-negative integer');
    }
    if (!Number.isInteger(limit) || limit < 1 || limit > journalPageSizeMax) {
      throw invalid('limit', `must be an integer from 1 to ${journalPageSizeMax}`);
    }
    return this.read(async (tx) => {
      await requireOrganization(tx, organization);
      return readJournal(tx, organization, afterRevision, limit);
    });
  }

  /** The organization's newest journal revision (404 for an unknown organization). */
  async readRevision(organization: string): Promise<number> {
    return this.read((tx) => readRevision(tx, organization));
  }

  /** The newest `count` journal entries of an organization, oldest first. */
  readJournalTail(organization: string, count: number): Promise<JournalEntry[]> {
    if (!Number.isInteger(count) || count < 1 || count > journalPageSizeMax) {
      throw invalid('tail', `must be an integer from 1 to ${journalPageSizeMax}`);
    }
    return this.read(async (tx) => {
      await requireOrganization(tx, organization);
      return readJournalTail(tx, organization, count);
    });
  }

  /** Calls `listener(organization)` after every committed change (in this process). */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // Recount

  /** Every counter that differs from the sum of the live allocations (none, if all is well). */
  verifyCounters(): Promise<CounterDiscrepancy[]> {
    return this.store.transaction((tx) => findDiscrepancies(tx), { readOnly: true, snapshot: true });
  }

  /**
   * Replays every organization's journal and compares it with the counters (and checks the
   * revisions have no gaps). `onProgress` hears after each organization.
   */
  async verifyJournal(
    onProgress: (done: number, entries: number) => void = () => undefined,
  ): Promise<JournalDiscrepancy[]> {
    const found: JournalDiscrepancy[] = [];
    let done = 0;
    let entries = 0;
    let cursor: string | undefined;
    do {
      const page = await this.listOrganizations({ limit: pageSizeMax, cursor });
      for (const organization of page.items) {
        const result = await this.store.transaction((tx) => replayJournal(tx, organization.id), {
          readOnly: true,
          snapshot: true,
        });
        found.push(...result.discrepancies);
        done += 1;
        entries += result.entries;
        onProgress(done, entries);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return found;
  }

  /** Recounts and corrects every counter that drifted, journaling each correction. */
  async repairCounters(options: { principal?: string } = {}): Promise<CounterDiscrepancy[]> {
    const found = await this.verifyCounters();
    const organizations = [...new Set(found.map((d) => d.organization))];
    const repaired: CounterDiscrepancy[] = [];
    for (const organization of organizations) {
      repaired.push(
        ...(await this.write(options, (context) => repairOrganization(context, organization), organization)),
      );
    }
    return repaired;
  }

  // Tokens

  createToken(input: TokenInput, options: { principal?: string } = {}) {
    const checked = checkTokenInput(input, this.clock.nowMs());
    return this.write(options, ({ tx, dialect, nowMs, principal }) =>
      createToken(tx, dialect.keyShareRowsSuffix, checked, principal, nowMs),
    );
  }

  listTokens(): Promise<Token[]> {
    return this.read((tx) => listTokens(tx));
  }

  async revokeToken(id: string): Promise<void> {
    await this.write({}, ({ tx, nowMs }) => revokeToken(tx, id, nowMs));
    for (const listener of this.credentialListeners) listener();
  }

  /** The principal of an API token and its expiry, or undefined for an unknown, revoked or expired one. */
  principalOfToken(token: string): Promise<TokenGrant | undefined> {
    return this.read((tx) => principalOfToken(tx, token, this.clock.nowMs()));
  }

  /**
   * Calls `listener` after a commit in this process that may have ended credentials (a token
   * revoked, a project deleted with its tokens), so caches of authentication drop at once.
   */
  onCredentialsChanged(listener: () => void): () => void {
    this.credentialListeners.add(listener);
    return () => this.credentialListeners.delete(listener);
  }

  /** One round trip to the database, for health checks. */
  async ping(): Promise<void> {
    await this.read((tx) => tx.get('SELECT 1 AS ok'));
  }

  // Transactions

  private read<T>(work: (tx: Executor) => Promise<T>): Promise<T> {
    return this.store.transaction(work, { readOnly: true });
  }

  /**
   * One write transaction: the work, then the caller's `record` hook in the same transaction.
   * After commit, listeners hear that the organization changed.
   */
  private async write<T>(
    options: WriteOptions<T>,
    work: (context: WriteContext) => Promise<T>,
    organization?: string,
  ): Promise<T> {
    const result = await this.store.transaction(async (tx) => {
      const context: WriteContext = {
        tx,
        dialect: this.store.dialect,
        nowMs: this.clock.nowMs(),
        principal: options.principal ?? systemPrincipal,
        journal: [],
      };
      const value = await work(context);
      await writeJournal(context);
      if (options.record) await options.record(tx, value);
      return value;
    });
    if (organization !== undefined) for (const listener of this.listeners) listener(organization);
    return result;
  }
}
