/** Quotas (an organization's, per kind) and project quotas (a project's cap and guarantee, per kind). */
import { pageOfSetsMax } from '../../domain/constants.js';
import { build } from '../engine/build.js';
import { invalid } from '../../domain/errors.js';
import { readQuotas } from '../quotas/quotas.js';
import { readProjectQuotas } from '../quotas/project-quotas.js';
import type { ProjectQuotaInput, ProjectQuotaSet, QuotaInput, QuotaSet, QuotaUsage, WriteOptions } from '../types.js';
import type { Core } from '../core.js';

export const quotasOf = (core: Core) => ({
    async getQuotas(organization: string): Promise<QuotaUsage[]> {
      return (await this.getQuotaSet(organization)).quotas;
    },

    /** Several organizations' quotas, read in one snapshot (a page of the dashboard). */
    getQuotaSets(organizations: readonly string[]): Promise<QuotaSet[]> {
      if (organizations.length > pageOfSetsMax) {
        throw invalid('limit', `must be at most ${pageOfSetsMax} when each organization comes with its quotas`);
      }
      return core.store.transaction(async (tx) => {
          const sets: QuotaSet[] = [];
          for (const organization of organizations) sets.push(await readQuotas(tx, organization, core.clock.nowMs()));
          return sets;
        },
        { readOnly: true, snapshot: true },
      );
    },

    getQuotaSet(organization: string): Promise<QuotaSet> {
      // One snapshot: the expired holds left out and the counters are read at the same moment.
      return core.store.transaction((tx) => readQuotas(tx, organization, core.clock.nowMs()), {
        readOnly: true,
        snapshot: true,
      });
    },

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
    },

    async setQuotaSet(
      organization: string,
      inputs: readonly QuotaInput[],
      options: WriteOptions & { force?: boolean } = {},
    ): Promise<QuotaSet> {
      return core.one(build.setQuotas(organization, inputs, options.force ?? false, options.ifGeneration), options);
    },


    getProjectQuotaSet(organization: string, project: string): Promise<ProjectQuotaSet> {
      return core.store.transaction((tx) => readProjectQuotas(tx, organization, project, core.clock.nowMs()), {
        readOnly: true,
        snapshot: true,
      });
    },

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
      return core.one(build.setProjectQuotas(organization, project, inputs, options.force ?? false, options.ifGeneration), options);
    },

  /**
   * Every organization's usage of every kind and the limit in force (its quota, else the kind's
   * default; null: unlimited), from the counters (a metrics scrape).
   */
  async usageOfEveryQuota(): Promise<{ organization: string; kind: string; used: number; limit: number | null }[]> {
    const rows = await core.read((tx) =>
      tx.all<{ organization_id: string; kind: string; used: number | string; quota_limit: number | string | null }>(
        'SELECT organization_id, kind, committed + reserved + held AS used, COALESCE(quota, kind_default) AS quota_limit FROM quota_counters',
      ),
    );
    return rows.map((row) => ({
      organization: row.organization_id,
      kind: row.kind,
      used: Number(row.used),
      limit: row.quota_limit === null ? null : Number(row.quota_limit),
    }));
  },
});
