/**
 * The limits controller closes the loop between the limits configured in allot and the
 * trackers in each region's host services. It is level-triggered: every pass reads what is,
 * compares it with what should be, and makes one change per difference, so running it twice
 * changes nothing and killing it anywhere and restarting converges.
 *
 * One controller runs per region. In each pass it:
 * 1. manages trackers (for the projects whose primary region is its own): in every enabled
 *    region's host for the limit's service, a tracker per (project, resource type) whose limit
 *    is the region's *configured* limit (or its share of a global bound, escrow.ts) — created,
 *    updated when it changes, deleted when the limit or the region is gone; and on every host,
 *    trackers of projects allot no longer knows (a deleted project has no primary region any
 *    more). Usage never raises a tracker's limit: a region over its limit refuses creates and
 *    accepts deletes until it is back under;
 * 2. syncs usage (for its own region): copies each tracker's `used` into its limit's usage
 *    (the API's active limit, max(configured, usage), shows the gap), and counts the drifts its
 *    hosts' journals hold into the metrics;
 * 3. records, per host, whether it answered — and, for its own region's hosts, that their usage
 *    was synced (a limit's hostStatus): an unreachable host is skipped and reported stale; the
 *    others go on.
 */
import { controllerIntervalMs, historySampleIntervalMs } from '../domain/constants.js';
import type { Ledger } from '../ledger/ledger.js';
import type { HostAccess } from '../ledger/limits/regions.js';
import { desiredTrackers, hostKey, trackerKey, type BoundedLimit, type DesiredTrackers } from './desired.js';
import { rebalance, type MoveTracker, type RegionShare } from './escrow.js';
import { callHost, HostError, limitPath, listTrackers, type HostTracker } from './host-calls.js';
import type { ControllerMetrics } from './metrics.js';

export interface PassReport {
  trackersSet: number;
  trackersDeleted: number;
  usageReported: number;
  /** Hosts that could not be reached or refused, with why. */
  hostErrors: { region: string; service: string; error: string }[];
  /** Tracker usages that matched no limit, or more than one (a project id in two organizations). */
  unmatched: number;
}

export interface ControllerOptions {
  ledger: Ledger;
  region: string;
  intervalMs?: number;
  /** How often to sample usage into the history (default historySampleIntervalMs; 0: never). */
  historyIntervalMs?: number;
  metrics?: ControllerMetrics;
  onError?: (error: unknown) => void;
}

export class LimitsController {
  readonly region: string;
  private readonly ledger: Ledger;
  private readonly metrics?: ControllerMetrics;
  /**
   * The escrow's rotation (escrow.ts): advances by one every pass, so with fewer free units
   * than regions each region gets one within n passes. It starts from the time in intervals,
   * so controllers run one pass at a time (`--once`) rotate too.
   */
  private turn: number;
  /** Per own host (hostKey), the drift count its trackers answer last gave. */
  private readonly driftsSeen = new Map<string, number>();
  private lastSampleMs: number | undefined;

  constructor(private readonly options: ControllerOptions) {
    this.region = options.region;
    this.ledger = options.ledger;
    this.metrics = options.metrics;
    this.turn = Math.floor(this.ledger.clock.nowMs() / (options.intervalMs ?? controllerIntervalMs));
  }

  /** One reconcile pass; see the file's comment. */
  async reconcileOnce(): Promise<PassReport> {
    const startedMs = this.ledger.clock.nowMs();
    const report: PassReport = { trackersSet: 0, trackersDeleted: 0, usageReported: 0, hostErrors: [], unmatched: 0 };
    const desired = desiredTrackers(await this.ledger.limitsManagedBy(this.region));
    const hosts = await this.ledger.allHosts();
    const turn = this.turn++;
    for (const limit of desired.bounded) await this.rebalanceGlobal(limit, hosts, report, turn);
    for (const host of hosts) await this.reconcileHost(host, desired, report);
    this.metrics?.passes.inc({ region: this.region, outcome: report.hostErrors.length === 0 ? 'ok' : 'host-errors' });
    this.metrics?.reconcileSeconds.observe((this.ledger.clock.nowMs() - startedMs) / 1000);
    return report;
  }

  /** One host's part of a pass: its trackers, then (own region) its usage and drifts. */
  private async reconcileHost(host: HostAccess, desired: DesiredTrackers, report: PassReport): Promise<void> {
    const own = host.region === this.region;
    const wanted = desired.byHost.get(hostKey(host.region, host.service)) ?? new Map<string, number | null>();
    try {
      const listed = await listTrackers(host);
      const current = new Map(listed.items.map((t) => [trackerKey(t.project, t.resourceType), t]));
      // 1. Trackers of the projects this region manages.
      for (const [key, limit] of wanted) {
        if (limit === null || current.get(key)?.limit === limit) continue;
        const [project, resourceType] = key.split('\u0000') as [string, string];
        await callHost(host, 'PUT', limitPath(project, resourceType), { limit });
        report.trackersSet += 1;
      }
      const deleted = await this.deleteTrackers(host, listed.items, wanted, desired.projects, report);
      // 2. Usage of this region's trackers into their limits, and the drifts its journal holds.
      if (own) {
        await this.syncUsage(host, listed.items.filter((t) => !deleted.has(trackerKey(t.project, t.resourceType))), report);
        this.countDrifts(host, listed.drifts);
      }
      await this.ledger.recordHostStatus(host.region, host.service, null, own);
    } catch (error) {
      if (!(error instanceof HostError)) throw error;
      report.hostErrors.push({ region: host.region, service: host.service, error: error.message });
      await this.ledger.recordHostStatus(host.region, host.service, error.message, own);
    }
  }

  /**
   * Deletes a host's trackers of managed projects that should not exist (the limit or the
   * region is gone), and of projects allot no longer knows (deleted, or never made): whichever
   * controller gets there first deletes those, the others find them gone. Returns their keys.
   */
  private async deleteTrackers(
    host: HostAccess,
    trackers: readonly HostTracker[],
    wanted: ReadonlyMap<string, number | null>,
    managedProjects: ReadonlySet<string>,
    report: PassReport,
  ): Promise<Set<string>> {
    const unknown = await this.unknownProjects(trackers);
    const deleted = new Set<string>();
    for (const tracker of trackers) {
      const key = trackerKey(tracker.project, tracker.resourceType);
      const ours = managedProjects.has(tracker.project) && !wanted.has(key);
      if (!ours && !unknown.has(tracker.project)) continue;
      await callHost(host, 'DELETE', limitPath(tracker.project, tracker.resourceType), undefined, true);
      deleted.add(key);
      report.trackersDeleted += 1;
    }
    return deleted;
  }

  /** Copies each tracker's `used` into its limit's usage (an observation: enforcement stays). */
  private async syncUsage(host: HostAccess, trackers: readonly HostTracker[], report: PassReport): Promise<void> {
    for (const tracker of trackers) {
      const { matched, changed } = await this.ledger.reportTrackerUsage(
        this.region,
        host.service,
        tracker.project,
        tracker.resourceType,
        tracker.used,
      );
      if (matched !== 1) {
        report.unmatched += 1;
        continue;
      }
      report.usageReported += 1;
      // The lag of a change: from the tracker's last move in its host to now.
      if (changed) this.metrics?.syncLag.observe(Math.max(0, this.ledger.clock.nowMs() - Date.parse(tracker.updatedAt)) / 1000);
    }
  }

  /**
   * Drifts from every cause reach the metrics: a host's trackers answer says how many drift
   * entries its mixin journal holds for its region (recounts by any caller, limit changes,
   * leftover deltas cleaned up), and the increase since the last answer is counted — the first
   * answer counts from 0; a count that went down (the journal was pruned or replaced) starts
   * again from there. Returns the increase, or undefined when the host does not say.
   */
  private countDrifts(host: HostAccess, drifts: unknown): number | undefined {
    if (typeof drifts !== 'number' || !Number.isSafeInteger(drifts) || drifts < 0) return undefined;
    const key = hostKey(host.region, host.service);
    const found = Math.max(0, drifts - (this.driftsSeen.get(key) ?? 0));
    this.driftsSeen.set(key, drifts);
    if (found > 0) this.metrics?.drift.inc({ region: host.region, service: host.service }, found);
    return found;
  }

  /**
   * Moves the regional trackers of a globally bounded limit toward the regions using it
   * (escrow.ts). Needs every region's host: with one unreachable, nothing moves this pass (the
   * trackers keep enforcing their shares, which add up to at most the bound).
   */
  private async rebalanceGlobal(limit: BoundedLimit, hosts: readonly HostAccess[], report: PassReport, turn: number): Promise<void> {
    const hostOf = new Map<string, HostAccess>();
    for (const region of limit.regions) {
      const host = hosts.find((h) => h.region === region && h.service === limit.service);
      if (!host) {
        // Nothing moves without every region's host; say why, or the shares stall unexplained.
        const error = `escrow of ${limit.project}/${limit.resourceType}: no host of ${limit.service} registered in ${region}`;
        report.hostErrors.push({ region, service: limit.service, error });
        return;
      }
      hostOf.set(region, host);
    }
    const move: MoveTracker = async (region, value) => {
      const tracker = (await callHost(hostOf.get(region)!, 'PUT', limitPath(limit.project, limit.resourceType), { limit: value })) as HostTracker;
      report.trackersSet += 1;
      return { region, limit: tracker.limit, used: tracker.used };
    };
    try {
      const current: RegionShare[] = [];
      for (const region of limit.regions.sort()) {
        const path = limitPath(limit.project, limit.resourceType, '/admin/trackers');
        const tracker = (await callHost(hostOf.get(region)!, 'GET', path, undefined, true)) as HostTracker | undefined;
        // A region without its tracker yet starts at 0: it holds nothing of the bound.
        current.push(tracker === undefined ? await move(region, 0) : { region, limit: tracker.limit, used: tracker.used });
      }
      const shares = await rebalance(limit.global, current, move, turn);
      await this.ledger.recordGlobalShares(limit.organization, limit.project, limit.service, limit.resourceType, shares);
    } catch (error) {
      if (!(error instanceof HostError)) throw error;
      report.hostErrors.push({ region: '*', service: limit.service, error: `escrow of ${limit.project}/${limit.resourceType}: ${error.message}` });
    }
  }

  /**
   * Asks every host of this region to clean up leftover deltas and recount its trackers from
   * its own rows (the true recount). Returns how many drifts they found and fixed (leftovers
   * included). They reach the metrics once: a host that counts drifts in its trackers answer has
   * these among them (countDrifts, asked right after); for one that does not, they are counted
   * from the recount's answer.
   */
  async recountHosts(): Promise<number> {
    let found = 0;
    for (const host of await this.ledger.hostsOfRegion(this.region)) {
      try {
        const answer = (await callHost(host, 'POST', '/admin/trackers/recount', {})) as { drifts: unknown[]; leftovers?: unknown[] };
        const fixed = answer.drifts.length + (answer.leftovers?.length ?? 0);
        found += fixed;
        if (this.countDrifts(host, (await listTrackers(host)).drifts) === undefined) {
          this.metrics?.drift.inc({ region: this.region, service: host.service }, fixed);
        }
      } catch (error) {
        if (!(error instanceof HostError)) throw error;
        await this.ledger.recordHostStatus(host.region, host.service, error.message);
      }
    }
    return found;
  }

  /**
   * Samples every quota's and limit's usage into the history, at the start of the current
   * sampling interval: controllers of several regions sampling the same interval write one
   * sample. Returns how many series were sampled (0 if this interval is already done here).
   */
  async sampleHistory(): Promise<number> {
    const intervalMs = this.options.historyIntervalMs ?? historySampleIntervalMs;
    if (intervalMs <= 0) return 0;
    const bucketMs = Math.floor(this.ledger.clock.nowMs() / intervalMs) * intervalMs;
    if (bucketMs === this.lastSampleMs) return 0;
    const sampled = await this.ledger.sampleUsage(bucketMs);
    this.lastSampleMs = bucketMs;
    return sampled;
  }

  /** Runs a pass every interval until the returned function is called (and awaited). */
  start(): () => Promise<void> {
    let stopped = false;
    let wake: () => void = () => undefined;
    let timer: NodeJS.Timeout | undefined;
    const loop = (async () => {
      while (!stopped) {
        try {
          await this.reconcileOnce();
          // Once per sampling interval: the history, and a true recount in this region's hosts.
          const interval = this.lastSampleMs;
          await this.sampleHistory();
          if (this.lastSampleMs !== interval) await this.recountHosts();
        } catch (error) {
          this.options.onError?.(error);
        }
        if (stopped) break;
        // A live timer: it is what keeps a standalone controller process running.
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, this.options.intervalMs ?? controllerIntervalMs);
        });
      }
    })();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      wake();
      await loop;
    };
  }

  private async unknownProjects(trackers: readonly HostTracker[]): Promise<Set<string>> {
    const projects = [...new Set(trackers.map((t) => t.project))];
    const known = await this.ledger.knownProjects(projects);
    return new Set(projects.filter((project) => !known.has(project)));
  }
}
