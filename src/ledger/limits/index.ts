/** Limits (per project, service, resource type and region), the regions host services run in, and what the limits controller reads and reports. */
import { pageOfSetsMax } from '../../domain/constants.js';
import { invalid } from '../../domain/errors.js';
import { pageSize } from '../pages.js';
import {
  deleteLimit,
  listLimits,
  listOrganizationLimits,
  readLimit,
  reportLimitUsage,
  reportTrackerUsage,
  writeGlobalShares,
  writeLimit,
} from '../limits/limits.js';
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
} from '../limits/regions.js';
import type { Limit, LimitRegion, LimitRegionInput, Page, PageRequest, QuantityInput, WriteOptions } from '../types.js';
import { checkDisplayName, checkId, checkQuantity } from '../validate.js';
import { checkHostInput, checkLimitRegions, checkProjectRegionsInput } from './validate.js';
import type { Core } from '../core.js';
import { hostStatusOf } from './regions.js';

export const limitsOf = (core: Core) => ({
    putRegion(name: string, input: { displayName?: string }) {
      checkId('region', name);
      const displayName = checkDisplayName(input.displayName ?? name);
      return core.write({}, ({ tx, nowMs }) => upsertRegion(tx, name, displayName, nowMs));
    },

    getRegion(name: string): Promise<Region> {
      return core.read((tx) => readRegion(tx, name, core.clock.nowMs()));
    },

    listRegions(): Promise<Region[]> {
      return core.read((tx) => listRegions(tx, core.clock.nowMs()));
    },

    /** Registers how the controller reaches `service`'s trackers in `region`. */
    putRegionHost(region: string, service: string, input: { endpoint: string; token: string }): Promise<RegionHost> {
      checkId('service', service);
      const { endpoint, token } = checkHostInput(input);
      return core.write({}, ({ tx, nowMs }) => putRegionHost(tx, region, service, endpoint, token, nowMs));
    },

    deleteRegionHost(region: string, service: string): Promise<{ deleted: boolean }> {
      return core.write({}, async ({ tx }) => ({ deleted: await deleteRegionHost(tx, region, service) }));
    },

    getProjectRegions(organization: string, project: string): Promise<ProjectRegions> {
      return core.read((tx) => readProjectRegions(tx, organization, project));
    },

    /** Sets a project's primary region and the regions it is enabled in. */
    setProjectRegions(
      organization: string,
      project: string,
      input: { primary: string; enabled: readonly string[] },
      options: WriteOptions<ProjectRegions> = {},
    ): Promise<ProjectRegions> {
      const { primary, enabled } = checkProjectRegionsInput(input);
      return core.write(
        options,
        async (context) => {
          await writeProjectRegions(context, organization, project, primary, enabled);
          return readProjectRegions(context.tx, organization, project);
        },
        organization,
      );
    },


    /** The limits the controller of `region` manages (projects whose primary it is), with their regions. */
    limitsManagedBy(region: string) {
      return core.read((tx) => limitsManagedBy(tx, region));
    },

    /** The hosts registered in a region, with their tokens (never served over the API). */
    hostsOfRegion(region: string): Promise<HostAccess[]> {
      return core.read((tx) => hostsOfRegion(tx, region));
    },

    allHosts(): Promise<HostAccess[]> {
      return core.read((tx) => allHosts(tx));
    },

    /** How reaching a host went; `usageSync`: its own region's controller syncing its usage. */
    recordHostStatus(region: string, service: string, error: string | null, usageSync = false): Promise<void> {
      return core.write({}, ({ tx, nowMs }) => recordHostStatus(tx, region, service, error, nowMs, usageSync));
    },

    /** Which of these project ids exist (not deleted) in some organization. */
    knownProjects(projects: readonly string[]): Promise<Set<string>> {
      return core.read((tx) => knownProjects(tx, projects));
    },

    /** The controller's usage sync: see reportTrackerUsage in limits.ts. */
    reportTrackerUsage(
      region: string,
      service: string,
      project: string,
      resourceType: string,
      used: number,
    ): Promise<{ matched: number; changed: boolean }> {
      return core.write({}, ({ tx, nowMs }) => reportTrackerUsage(tx, region, service, project, resourceType, used, nowMs));
    },

    /** Records the shares of a global bound the controller set on the regions' trackers. */
    recordGlobalShares(
      organization: string,
      project: string,
      service: string,
      resourceType: string,
      shares: readonly { region: string; limit: number; used: number }[],
    ): Promise<void> {
      return core.write({}, ({ tx, nowMs }) => writeGlobalShares(tx, organization, project, service, resourceType, shares, nowMs));
    },


    listLimits(organization: string, project: string): Promise<Limit[]> {
      return core.read((tx) => listLimits(tx, organization, project, core.clock.nowMs()));
    },

    /** An organization's limits, a page of projects at a time. */
    listOrganizationLimits(organization: string, filter: PageRequest & { project?: string } = {}): Promise<Page<Limit>> {
      const limit = pageSize(filter);
      if (limit > pageOfSetsMax) throw invalid('limit', `must be at most ${pageOfSetsMax} projects`);
      return core.read((tx) => listOrganizationLimits(tx, organization, filter, limit, core.clock.nowMs()));
    },

    getLimit(organization: string, project: string, service: string, resourceType: string): Promise<Limit> {
      return core.read((tx) => readLimit(tx, organization, project, service, resourceType, core.clock.nowMs()));
    },

    /**
     * Sets the configured limit per listed region; regions not listed lose theirs. A project
     * with enabled regions takes limits in those alone.
     */
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
      return core.write(
        options,
        async (context) => {
          await writeLimit(context, organization, project, service, resourceType, checked.regions, checked.global);
          return readLimit(context.tx, organization, project, service, resourceType, context.nowMs);
        },
        organization,
      );
    },

    /** Removes a limit in every region; `{ deleted: false }` if there was none. */
    deleteLimit(
      organization: string,
      project: string,
      service: string,
      resourceType: string,
      options: WriteOptions<{ deleted: boolean }> = {},
    ): Promise<{ deleted: boolean }> {
      return core.write(
        options,
        async (context) => ({ deleted: await deleteLimit(context, organization, project, service, resourceType) }),
        organization,
      );
    },

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
      return core.write(options, (context) =>
        reportLimitUsage(context, organization, project, service, resourceType, region, checked),
      );
    },

  /** Every limit of every region, configured and reported (a metrics scrape). */
  async everyLimitRegion(): Promise<
    { organization: string; project: string; service: string; resourceType: string; region: string; configured: number; usage: number }[]
  > {
    const rows = await core.read((tx) =>
      tx.all<{ organization_id: string; project_id: string; service: string; resource_type: string; region: string; configured: number; usage: number }>(
        'SELECT organization_id, project_id, service, resource_type, region, configured, usage FROM limits',
      ),
    );
    return rows.map((row) => ({
      organization: row.organization_id,
      project: row.project_id,
      service: row.service,
      resourceType: row.resource_type,
      region: row.region,
      configured: Number(row.configured),
      usage: Number(row.usage),
    }));
  },

  /** Every registered host and whether the controller reaches it (a metrics scrape). */
  async everyHostStatus(): Promise<{ region: string; service: string; status: RegionHost['status'] }[]> {
    const rows = await core.read((tx) =>
      tx.all<{ region: string; service: string; last_ok_at: number | null; last_error_at: number | null }>(
        'SELECT region, service, last_ok_at, last_error_at FROM region_hosts',
      ),
    );
    const nowMs = core.clock.nowMs();
    return rows.map((row) => ({ region: row.region, service: row.service, status: hostStatusOf(row, nowMs) }));
  },
});
