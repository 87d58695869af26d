/** Holds: quota held for a referenced resource until confirmed, released or expired. */
import { build } from '../engine/build.js';
import { listHolds, organizationsWithExpiredHolds, readHold } from '../holds/reads.js';
import { pageSize } from '../pages.js';
import type { ConfirmInput, Hold, HoldInput, Page, PageRequest, WriteOptions } from '../types.js';
import type { Core } from '../core.js';

export const holdsOf = (core: Core) => ({
    async createHold(
      organization: string,
      project: string,
      input: HoldInput,
      options: WriteOptions = {},
    ): Promise<Hold> {
      return core.one(build.createHold(organization, project, input), options);
    },

    /** Confirms a pending hold, in full or for less; 409 hold-already-resolved otherwise. */
    async confirmHold(
      organization: string,
      project: string,
      id: string,
      input: ConfirmInput = {},
      options: WriteOptions = {},
    ): Promise<Hold> {
      return core.one(build.confirmHold(organization, project, id, input, options.ifGeneration), options);
    },

    async releaseHold(
      organization: string,
      project: string,
      id: string,
      options: WriteOptions = {},
    ): Promise<Hold> {
      return core.one(build.releaseHold(organization, project, id, options.ifGeneration), options);
    },

    getHold(organization: string, project: string, id: string): Promise<Hold> {
      return core.read((tx) => readHold(tx, organization, project, id, core.clock.nowMs()));
    },

    listHolds(organization: string, project: string, page: PageRequest = {}): Promise<Page<Hold>> {
      const limit = pageSize(page);
      return core.lagging(organization, (tx) => listHolds(tx, organization, project, page, limit, core.clock.nowMs()));
    },

    /**
     * Resolves expired holds everywhere (the background sweeper). Decisions never count an
     * expired hold whether or not this has run; it keeps the books tidy and journals expiries.
     */
    async sweepExpiredHolds(): Promise<number> {
      const organizations = await core.read((tx) =>
        organizationsWithExpiredHolds(tx, core.clock.nowMs()),
      );
      const results = await Promise.all(organizations.map((organization) => core.one({ op: 'holds.expire', organization })));
      return results.reduce((sum: number, { expired }: { expired: number }) => sum + expired, 0);
    },
});
