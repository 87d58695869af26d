/**
 * The limits controller closes the loop between the limits configured in allot and the
 * trackers in each region's host services. It is level-triggered: every pass reads what is,
 * compares it with what should be, and makes one change per difference, so running it twice
 * changes nothing and killing it anywhere and restarting converges.
 *
 * One controller runs per region. In each pass it:
 * 1. manages trackers (for the projects whose primary region is its own): in every enabled
 *    region's host for the limit's service, a tracker per (project, resource type) whose limit
 *    is the region's active limit — created, updated when the active limit changes, deleted
 *    when the limit or the region is gone; and on every host, trackers of projects allot no
 *    longer knows (a deleted project has no primary region any more);
 * 2. syncs usage (for its own region): copies each tracker's `used` into its limit's usage,
 *    which moves the active limit (never below usage) for the next pass;
 * 3. records, per host, whether it answered: an unreachable host is skipped and reported
 *    stale; the others go on.
 */
import { controllerIntervalMs, historySampleIntervalMs, hostRequestTimeoutMs } from '../domain/constants.js';
import type { Ledger } from '../ledger/ledger.js';
import type { HostAccess } from '../ledger/limits/regions.js';
import { rebalance, type MoveTracker, type RegionShare } from './escrow.js';
import type { ControllerMetrics } from './metrics.js';

interface HostTracker {
  project: string;
  resourceType: string;
  limit: number;
  used: number;
  updatedAt: string;
}

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

class HostError extends Error {}

/** The mixin's admin routes of one host, with its token. */
async function call(host: HostAccess, method: string, path: string, body?: unknown, missingOk = false): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(`${host.endpoint}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${host.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(hostRequestTimeoutMs),
    });
  } catch (error) {
    throw new HostError(`${method} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (missingOk && response.status === 404) return undefined;
  if (!response.ok) {
    throw new HostError(`${method} ${path}: ${response.status} ${(await response.text()).slice(0, 200)}`);
  }
  return response.status === 204 ? undefined : response.json();
}

export class LimitsController {
  readonly region: string;
  private readonly ledger: Ledger;
  private readonly metrics?: ControllerMetrics;

  constructor(private readonly options: ControllerOptions) {
    this.region = options.region;
    this.ledger = options.ledger;
    this.metrics = options.metrics;
  }

  /** One reconcile pass; see the file's comment. */
  async reconcileOnce(): Promise<PassReport> {
    const startedMs = this.ledger.clock.nowMs();
    const report: PassReport = { trackersSet: 0, trackersDeleted: 0, usageReported: 0, hostErrors: [], unmatched: 0 };
    const managed = await this.ledger.limitsManagedBy(this.region);
    const managedProjects = new Set(managed.projects.map((p) => p.project));
    const enabled = new Map(managed.projects.map((p) => [`${p.organization}\u0000${p.project}`, new Set(p.enabled)]));
    const hosts = await this.ledger.allHosts();
    // What trackers should exist, per host (region, service): project/type -> limit, or null
    // for the trackers of a global bound, whose limits the escrow below moves.
    const desired = new Map<string, Map<string, number | null>>();
    const bounded = new Map<string, { organization: string; project: string; service: string; resourceType: string; global: number; regions: string[] }>();
    for (const limit of managed.limits) {
      if (!enabled.get(`${limit.organization}\u0000${limit.project}`)?.has(limit.region)) continue;
      const hostKey = `${limit.region}\u0000${limit.service}`;
      const trackers = desired.get(hostKey) ?? new Map<string, number | null>();
      trackers.set(`${limit.project}\u0000${limit.resourceType}`, limit.global === null ? limit.activeLimit : null);
      desired.set(hostKey, trackers);
      if (limit.global !== null) {
        const key = `${limit.organization}\u0000${limit.project}\u0000${limit.service}\u0000${limit.resourceType}`;
        const entry = bounded.get(key) ?? { ...limit, global: limit.global, regions: [] };
        entry.regions.push(limit.region);
        bounded.set(key, entry);
      }
    }
    for (const limit of bounded.values()) await this.rebalanceGlobal(limit, hosts, report);

    for (const host of hosts) {
      const own = host.region === this.region;
      const wanted = desired.get(`${host.region}\u0000${host.service}`) ?? new Map<string, number | null>();
      try {
        const listed = (await call(host, 'GET', '/admin/trackers')) as { items: HostTracker[] };
        const current = new Map(listed.items.map((t) => [`${t.project}\u0000${t.resourceType}`, t]));
        // 1. Trackers of the projects this region manages.
        for (const [key, limit] of wanted) {
          if (limit === null || current.get(key)?.limit === limit) continue;
          const [project, resourceType] = key.split('\u0000') as [string, string];
          await call(host, 'PUT', `/admin/limits/${encodeURIComponent(project)}/${encodeURIComponent(resourceType)}`, { limit });
          report.trackersSet += 1;
        }
        // Trackers of a project allot no longer knows (deleted, or never made) go from every
        // host; whichever controller gets there first deletes them, the others find them gone.
        const unknown = await this.unknownProjects(listed.items);
        const deleted = new Set<string>();
        for (const [key, tracker] of current) {
          const ours = managedProjects.has(tracker.project) && !wanted.has(key);
          if (!ours && !unknown.has(tracker.project)) continue;
          const path = `/admin/limits/${encodeURIComponent(tracker.project)}/${encodeURIComponent(tracker.resourceType)}`;
          await call(host, 'DELETE', path, undefined, true);
          deleted.add(key);
          report.trackersDeleted += 1;
        }
        // 2. Usage of this region's trackers into their limits.
        if (own) {
          for (const tracker of listed.items) {
            if (deleted.has(`${tracker.project}\u0000${tracker.resourceType}`)) continue;
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
        await this.ledger.recordHostStatus(host.region, host.service, null);
      } catch (error) {
        if (!(error instanceof HostError)) throw error;
        report.hostErrors.push({ region: host.region, service: host.service, error: error.message });
        await this.ledger.recordHostStatus(host.region, host.service, error.message);
      }
    }
    this.metrics?.passes.inc({ region: this.region, outcome: report.hostErrors.length === 0 ? 'ok' : 'host-errors' });
    this.metrics?.reconcileSeconds.observe((this.ledger.clock.nowMs() - startedMs) / 1000);
    return report;
  }

  /**
   * Moves the regional trackers of a globally bounded limit toward the regions using it
   * (escrow.ts). Needs every region's host: with one unreachable, nothing moves this pass (the
   * trackers keep enforcing their shares, which add up to at most the bound).
   */
  private async rebalanceGlobal(
    limit: { organization: string; project: string; service: string; resourceType: string; global: number; regions: string[] },
    hosts: readonly HostAccess[],
    report: PassReport,
  ): Promise<void> {
    const path = `/admin/limits/${encodeURIComponent(limit.project)}/${encodeURIComponent(limit.resourceType)}`;
    const hostOf = new Map<string, HostAccess>();
    for (const region of limit.regions) {
      const host = hosts.find((h) => h.region === region && h.service === limit.service);
      if (!host) return;
      hostOf.set(region, host);
    }
    const move: MoveTracker = async (region, value) => {
      const tracker = (await call(hostOf.get(region)!, 'PUT', path, { limit: value })) as HostTracker;
      report.trackersSet += 1;
      return { region, limit: tracker.limit, used: tracker.used };
    };
    try {
      const current: RegionShare[] = [];
      for (const region of limit.regions.sort()) {
        const host = hostOf.get(region)!;
        const trackerPath = `/admin/trackers/${encodeURIComponent(limit.project)}/${encodeURIComponent(limit.resourceType)}`;
        const tracker = await call(host, 'GET', trackerPath, undefined, true);
        // A region without its tracker yet starts at 0: it holds nothing of the bound.
        current.push(tracker === undefined ? await move(region, 0) : { region, limit: (tracker as HostTracker).limit, used: (tracker as HostTracker).used });
      }
      const shares = await rebalance(limit.global, current, move);
      await this.ledger.recordGlobalShares(limit.organization, limit.project, limit.service, limit.resourceType, shares);
    } catch (error) {
      if (!(error instanceof HostError)) throw error;
      report.hostErrors.push({ region: '*', service: limit.service, error: `escrow of ${limit.project}/${limit.resourceType}: ${error.message}` });
    }
  }

  /**
   * Asks every host of this region to recount its trackers from its own rows (the true
   * recount) and counts the drifts they found and fixed. Returns how many.
   */
  async recountHosts(): Promise<number> {
    let found = 0;
    for (const host of await this.ledger.hostsOfRegion(this.region)) {
      try {
        const { drifts } = (await call(host, 'POST', '/admin/trackers/recount', {})) as { drifts: unknown[] };
        found += drifts.length;
        this.metrics?.drift.inc({ region: this.region, service: host.service }, drifts.length);
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

  private lastSampleMs: number | undefined;

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
