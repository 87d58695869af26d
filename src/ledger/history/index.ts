/** Usage over time: samples of every quota's and limit's usage, and their series. */
import { notFound } from '../../domain/errors.js';
import { checkHistoryQuery, readLimitHistory, readQuotaHistory, sampleUsage, type HistorySeries } from '../history/history.js';
import { readLimit } from '../limits/limits.js';
import { checkId } from '../validate.js';
import type { Core } from '../core.js';

export const historyOf = (core: Core) => ({
    /** Samples every quota's and limit's usage into the history at `bucketMs` (idempotent per bucket). */
    sampleUsage(bucketMs: number): Promise<number> {
      return core.write({}, ({ tx, nowMs }) => sampleUsage(tx, bucketMs, nowMs));
    },

    /** An organization's usage of a kind over time, in steps of `step` seconds (each step's high). */
    getQuotaHistory(
      organization: string,
      kind: string,
      range: { from?: string; to?: string; step?: number } = {},
    ): Promise<HistorySeries> {
      checkId('kind', kind);
      const query = checkHistoryQuery(range.from, range.to, range.step, core.clock.nowMs());
      return core.lagging(organization, (tx) => readQuotaHistory(tx, organization, kind, query, core.clock.nowMs()));
    },

    /** A limit's usage over time, per region (or one region). */
    async getLimitHistory(
      organization: string,
      project: string,
      service: string,
      resourceType: string,
      range: { region?: string; from?: string; to?: string; step?: number } = {},
    ): Promise<HistorySeries[]> {
      const query = checkHistoryQuery(range.from, range.to, range.step, core.clock.nowMs());
      return core.lagging(organization, async (tx) => {
        const limit = await readLimit(tx, organization, project, service, resourceType, core.clock.nowMs());
        const regions = limit.regions.map((r) => r.region).filter((r) => range.region === undefined || r === range.region);
        if (range.region !== undefined && regions.length === 0) throw notFound(`limit ${service}/${resourceType} in region "${range.region}"`);
        const series: HistorySeries[] = [];
        for (const region of regions) {
          series.push(await readLimitHistory(tx, organization, project, service, resourceType, region, query, core.clock.nowMs()));
        }
        return series;
      });
    },
});
