/**
 * Usage history: the controller samples every organization's quota usage and every limit's
 * usage into `usage_history`, and rolls finished hours up into each hour's highest usage, so
 * history reads stay cheap however long the range. Raw samples are kept for
 * historyRawRetentionMs, hourly ones for historyHourlyRetentionMs.
 */
import {
  historyHourlyRetentionMs,
  historyPointsMax,
  historyRawRetentionMs,
  quantityMax,
} from '../../domain/constants.js';
import { invalid } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';
import { requireOrganization, requireProject } from '../catalog/tenants.js';
import { isoOf } from '../time.js';

const hourMs = 60 * 60 * 1000;

export interface HistoryPoint {
  /** Start of the step. */
  at: string;
  /** The highest usage sampled in the step. */
  used: number;
  /** The limit in force then (null: unlimited). */
  quantity: number | null;
}

export interface HistorySeries {
  organization: string;
  series: string;
  from: string;
  to: string;
  stepSeconds: number;
  points: HistoryPoint[];
}

/**
 * Takes one sample of every series at `bucketMs` (the sampling interval's start), rolls the
 * finished hours up, and drops what is past retention. Idempotent for one bucket.
 */
export async function sampleUsage(tx: Executor, bucketMs: number, nowMs: number): Promise<number> {
  const quotas = await tx.all<{ organization_id: string; kind: string; used: number; quantity: number | null }>(
    `SELECT organization_id, kind, committed + reserved + held AS used, COALESCE(quota, kind_default) AS quantity
      FROM quota_counters`,
  );
  const limits = await tx.all<{ organization_id: string; project_id: string; service: string; resource_type: string; region: string; usage: number; configured: number }>(
    'SELECT organization_id, project_id, service, resource_type, region, usage, configured FROM limits',
  );
  const insert = `INSERT INTO usage_history (organization_id, series, resolution, at, used, quantity)
    VALUES (?, ?, 'raw', ?, ?, ?) ON CONFLICT (organization_id, series, resolution, at) DO NOTHING`;
  for (const q of quotas) {
    await tx.run(insert, [q.organization_id, `quota:${q.kind}`, bucketMs, Number(q.used), q.quantity === null ? null : Number(q.quantity)]);
  }
  for (const l of limits) {
    const usage = Number(l.usage);
    await tx.run(insert, [
      l.organization_id,
      `limit:${l.project_id}/${l.service}/${l.resource_type}/${l.region}`,
      bucketMs,
      usage,
      Math.max(Number(l.configured), usage),
    ]);
  }
  // Finished hours, each one's highest usage and limit: every hour since the last one rolled up
  // (so hours the sampling skipped — controllers down for a while — are not lost when their raw
  // samples expire), and the last two again (a sample written late lands in them).
  const currentHour = Math.floor(nowMs / hourMs) * hourMs;
  const last = await tx.get<{ at: number | string | null }>(`SELECT MAX(at) AS at FROM usage_history WHERE resolution = 'hour'`);
  const lastRolled = last?.at == null ? nowMs - historyRawRetentionMs : Number(last.at);
  const rows = await tx.all<{ organization_id: string; series: string; hour: number; used: number; quantity: number | null }>(
    `SELECT organization_id, series, (at - (at % ${hourMs})) AS hour, MAX(used) AS used, MAX(quantity) AS quantity
      FROM usage_history WHERE resolution = 'raw' AND at < ? AND at >= ?
      GROUP BY organization_id, series, (at - (at % ${hourMs}))`,
    [currentHour, Math.max(0, Math.min(currentHour - 2 * hourMs, lastRolled))],
  );
  for (const row of rows) {
    await tx.run(
      `INSERT INTO usage_history (organization_id, series, resolution, at, used, quantity) VALUES (?, ?, 'hour', ?, ?, ?)
        ON CONFLICT (organization_id, series, resolution, at) DO UPDATE SET used = excluded.used, quantity = excluded.quantity`,
      [row.organization_id, row.series, Number(row.hour), Number(row.used), row.quantity === null ? null : Number(row.quantity)],
    );
  }
  await tx.run(`DELETE FROM usage_history WHERE resolution = 'raw' AND at < ?`, [nowMs - historyRawRetentionMs]);
  await tx.run(`DELETE FROM usage_history WHERE resolution = 'hour' AND at < ?`, [nowMs - historyHourlyRetentionMs]);
  return quotas.length + limits.length;
}

export interface HistoryQuery {
  from: number;
  to: number;
  stepSeconds: number;
}

/** Checks a range: from < to, a step of 1 s or more, at most historyPointsMax points. */
export function checkHistoryQuery(from: string | undefined, to: string | undefined, step: number | undefined, nowMs: number): HistoryQuery {
  const toMs = to === undefined ? nowMs : Date.parse(to);
  const fromMs = from === undefined ? toMs - 24 * hourMs : Date.parse(from);
  if (Number.isNaN(toMs)) throw invalid('to', 'must be an ISO 8601 time');
  if (Number.isNaN(fromMs)) throw invalid('from', 'must be an ISO 8601 time');
  if (fromMs >= toMs) throw invalid('from', 'must be before to');
  const stepSeconds = step ?? Math.max(60, Math.ceil((toMs - fromMs) / 1000 / 500));
  if (!Number.isInteger(stepSeconds) || stepSeconds < 1 || stepSeconds > quantityMax / 1000) {
    throw invalid('step', 'must be a whole number of seconds, 1 or more');
  }
  if ((toMs - fromMs) / (stepSeconds * 1000) > historyPointsMax) {
    throw invalid('step', `the range holds more than ${historyPointsMax} steps: use a longer step`);
  }
  return { from: fromMs, to: toMs, stepSeconds };
}

/**
 * One series over a range, in steps: each step's highest usage (and limit). Reads raw samples
 * where the range is within raw retention, hourly highs before that.
 */
export async function readSeries(
  tx: Executor,
  organization: string,
  series: string,
  query: HistoryQuery,
  nowMs: number,
): Promise<HistorySeries> {
  const stepMs = query.stepSeconds * 1000;
  const rawFrom = nowMs - historyRawRetentionMs;
  const rows = await tx.all<{ at: number; used: number; quantity: number | null }>(
    `SELECT at, used, quantity FROM usage_history
      WHERE organization_id = ? AND series = ? AND at >= ? AND at < ?
        AND ((resolution = 'raw' AND at >= ?) OR (resolution = 'hour' AND at < ?))
      ORDER BY at`,
    [organization, series, query.from, query.to, rawFrom, rawFrom],
  );
  const points = new Map<number, HistoryPoint>();
  for (const row of rows) {
    const bucket = query.from + Math.floor((Number(row.at) - query.from) / stepMs) * stepMs;
    const used = Number(row.used);
    const quantity = row.quantity === null ? null : Number(row.quantity);
    const point = points.get(bucket);
    if (!point) {
      points.set(bucket, { at: isoOf(bucket), used, quantity });
    } else {
      point.used = Math.max(point.used, used);
      point.quantity = quantity === null || point.quantity === null ? null : Math.max(point.quantity, quantity);
    }
  }
  return {
    organization,
    series,
    from: isoOf(query.from),
    to: isoOf(query.to),
    stepSeconds: query.stepSeconds,
    points: [...points.values()],
  };
}

export async function readQuotaHistory(tx: Executor, organization: string, kind: string, query: HistoryQuery, nowMs: number) {
  await requireOrganization(tx, organization);
  return readSeries(tx, organization, `quota:${kind}`, query, nowMs);
}

export async function readLimitHistory(
  tx: Executor,
  organization: string,
  project: string,
  service: string,
  resourceType: string,
  region: string,
  query: HistoryQuery,
  nowMs: number,
) {
  await requireProject(tx, organization, project);
  return readSeries(tx, organization, `limit:${project}/${service}/${resourceType}/${region}`, query, nowMs);
}
