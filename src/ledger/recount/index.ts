/** Recounts: every counter checked against the records, the journal replayed, drifts repaired. */
import { pageSizeMax } from '../../domain/constants.js';
import { findDiscrepancies, repairOrganization, replayJournal } from '../recount/recount.js';
import { listOrganizations } from '../catalog/tenants.js';
import type { CounterDiscrepancy, JournalDiscrepancy } from '../types.js';
import type { Core } from '../core.js';

export const recountOf = (core: Core) => ({
    /**
     * Every counter that differs from the sum of the live allocations (none, if all is well);
     * of one organization when given (a check that need not read every organization's rows).
     */
    verifyCounters(organization?: string): Promise<CounterDiscrepancy[]> {
      return core.store.transaction((tx) => findDiscrepancies(tx, organization), { readOnly: true, snapshot: true });
    },

    /**
     * Replays every organization's journal and compares it with the counters (and checks the
     * revisions have no gaps). `onProgress` hears after each organization.
     */
    async verifyJournal(
      onProgress: (done: number, entries: number) => void = () => undefined,
    ): Promise<JournalDiscrepancy[]> {
      const found: JournalDiscrepancy[] = [];
      let done = 0;
      let entries = 0;
      let cursor: string | undefined;
      do {
        const page = await core.read((tx) => listOrganizations(tx, pageSizeMax, cursor));
        for (const organization of page.items) {
          const result = await core.store.transaction((tx) => replayJournal(tx, organization.id), {
            readOnly: true,
            snapshot: true,
          });
          found.push(...result.discrepancies);
          done += 1;
          entries += result.entries;
          onProgress(done, entries);
        }
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      return found;
    },

    /** Recounts and corrects every counter that drifted, journaling each correction. */
    async repairCounters(options: { principal?: string } = {}): Promise<CounterDiscrepancy[]> {
      const found = await this.verifyCounters();
      const organizations = [...new Set(found.map((d) => d.organization))];
      const repaired: CounterDiscrepancy[] = [];
      for (const organization of organizations) {
        repaired.push(
          ...(await core.write(options, (context) => repairOrganization(context, organization), organization)),
        );
      }
      return repaired;
    },
});
