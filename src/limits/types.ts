/**
 * What the limits mixin answers — trackers, drifts, leftovers, journal entries — and how a
 * tracker's row becomes one; the names it accepts.
 */
import type { Executor } from '../store/store.js';
import { LimitsUsageError } from './errors.js';

export interface Tracker {
  region: string;
  project: string;
  resourceType: string;
  limit: number;
  used: number;
  generation: number;
  createdAt: string;
  updatedAt: string;
  recountedAt: string | null;
}

export interface Drift {
  region: string;
  project: string;
  resourceType: string;
  /** What the tracker held. */
  stored: number;
  /** What the host's tables hold: the tracker now holds this. */
  actual: number;
}

export interface LimitsJournalEntry {
  at: string;
  region: string;
  project: string;
  resourceType: string;
  action: 'limit.set' | 'recount.drift' | 'deltas.leftover' | 'tracker.deleted';
  detail: Record<string, unknown>;
}

/** Deltas a finished transaction noted and never applied, removed by `cleanLeftovers`. */
export interface Leftover {
  project: string;
  resourceType: string;
  /** How many rows were left, and their sum. */
  rows: number;
  delta: number;
}

/** Counts the host's resources of one type in one project, inside the given transaction. */
export type CountFunction = (tx: Executor, project: string) => Promise<number>;

export interface TrackerRow {
  region: string;
  project: string;
  resource_type: string;
  limit_value: number;
  used: number;
  generation: number;
  created_at: number;
  updated_at: number;
  recounted_at: number | null;
}

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !namePattern.test(value)) {
    throw new LimitsUsageError('invalid-request', `${field} must match ${namePattern.source}`);
  }
  return value;
}

export const trackerOf = (row: TrackerRow): Tracker => ({
  region: row.region,
  project: row.project,
  resourceType: row.resource_type,
  limit: row.limit_value,
  used: row.used,
  generation: row.generation,
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
  recountedAt: row.recounted_at === null ? null : new Date(row.recounted_at).toISOString(),
});

