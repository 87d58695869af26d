/**
 * How the controller calls a host service: the limits mixin's admin routes, with the bearer
 * token registered for the host, each call bounded by hostRequestTimeoutMs. A host that does
 * not answer, or answers with an error, throws HostError: the controller records it and goes on.
 */
import { hostRequestTimeoutMs } from '../domain/constants.js';
import type { HostAccess } from '../ledger/limits/regions.js';

export class HostError extends Error {}

/** A tracker as `GET /admin/trackers` lists it. */
export interface HostTracker {
  project: string;
  resourceType: string;
  limit: number;
  used: number;
  updatedAt: string;
}

/** `GET /admin/trackers`: the trackers, and (newer mixins) how many drifts its journal holds. */
export interface TrackerList {
  items: HostTracker[];
  /** Drift entries in the host's mixin journal for its region, all causes; absent: not told. */
  drifts?: unknown;
}

/** The path of one tracker's limit (PUT, DELETE) or of the tracker itself (`/admin/trackers`). */
export const limitPath = (project: string, resourceType: string, base = '/admin/limits') =>
  `${base}/${encodeURIComponent(project)}/${encodeURIComponent(resourceType)}`;

/** Calls one admin route of a host; `missingOk` answers a 404 with undefined. */
export async function callHost(host: HostAccess, method: string, path: string, body?: unknown, missingOk = false): Promise<unknown> {
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

/** `GET /admin/trackers` of a host. */
export const listTrackers = async (host: HostAccess) => (await callHost(host, 'GET', '/admin/trackers')) as TrackerList;
