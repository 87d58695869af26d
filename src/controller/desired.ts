/**
 * What trackers should exist (pure): from the limits a controller manages, per host (region,
 * service) the trackers of its projects and the limit each enforces — the region's
 * *configured* limit, never its usage: a usage report is an observation and must not let a
 * host create more than configured — and the limits bounded across regions, whose trackers'
 * limits are the escrow's shares instead (escrow.ts).
 */
import type { ManagedLimit } from '../ledger/limits/regions.js';

export interface BoundedLimit {
  organization: string;
  project: string;
  service: string;
  resourceType: string;
  global: number;
  /** The enabled regions that have the limit. */
  regions: string[];
}

export interface DesiredTrackers {
  /** hostKey → trackerKey → its limit, or null for a global bound's share (the escrow sets it). */
  byHost: Map<string, Map<string, number | null>>;
  bounded: BoundedLimit[];
  /** The projects the controller manages (its region is their primary). */
  projects: Set<string>;
}

export const hostKey = (region: string, service: string) => `${region}\u0000${service}`;
export const trackerKey = (project: string, resourceType: string) => `${project}\u0000${resourceType}`;

export function desiredTrackers(managed: {
  limits: readonly ManagedLimit[];
  projects: readonly { organization: string; project: string; enabled: readonly string[] }[];
}): DesiredTrackers {
  const enabled = new Map(managed.projects.map((p) => [`${p.organization}\u0000${p.project}`, new Set(p.enabled)]));
  const byHost = new Map<string, Map<string, number | null>>();
  const bounded = new Map<string, BoundedLimit>();
  for (const limit of managed.limits) {
    if (!enabled.get(`${limit.organization}\u0000${limit.project}`)?.has(limit.region)) continue;
    const trackers = byHost.get(hostKey(limit.region, limit.service)) ?? new Map<string, number | null>();
    trackers.set(trackerKey(limit.project, limit.resourceType), limit.global === null ? limit.configured : null);
    byHost.set(hostKey(limit.region, limit.service), trackers);
    if (limit.global !== null) {
      const key = `${limit.organization}\u0000${limit.project}\u0000${limit.service}\u0000${limit.resourceType}`;
      const { organization, project, service, resourceType, global } = limit;
      const entry = bounded.get(key) ?? { organization, project, service, resourceType, global, regions: [] };
      entry.regions.push(limit.region);
      bounded.set(key, entry);
    }
  }
  return { byHost, bounded: [...bounded.values()], projects: new Set(managed.projects.map((p) => p.project)) };
}
