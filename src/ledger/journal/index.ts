/** The journal: every change of an organization, numbered by a gap-free revision. */
import { journalPageSizeMax, pageSizeDefault } from '../../domain/constants.js';
import { invalid } from '../../domain/errors.js';
import { readJournal, readJournalTail, readRevision, type JournalEntry } from '../journal/journal.js';
import { requireOrganization } from '../catalog/tenants.js';
import type { Core, Listener } from '../core.js';

export const journalOf = (core: Core) => ({
    /** Journal entries of an organization after `afterRevision`, oldest first. */
    readJournal(
      organization: string,
      afterRevision = 0,
      limit = pageSizeDefault,
    ): Promise<JournalEntry[]> {
      if (!Number.isInteger(afterRevision) || afterRevision < 0) {
        throw invalid('after', 'must be a non-negative integer');
      }
      if (!Number.isInteger(limit) || limit < 1 || limit > journalPageSizeMax) {
        throw invalid('limit', `must be an integer from 1 to ${journalPageSizeMax}`);
      }
      return core.lagging(organization, async (tx) => {
        await requireOrganization(tx, organization);
        return readJournal(tx, organization, afterRevision, limit);
      });
    },

    /** The organization's newest journal revision (404 for an unknown organization). */
    async readRevision(organization: string): Promise<number> {
      return core.read((tx) => readRevision(tx, organization));
    },

    /** The newest `count` journal entries of an organization, oldest first. */
    readJournalTail(organization: string, count: number): Promise<JournalEntry[]> {
      if (!Number.isInteger(count) || count < 1 || count > journalPageSizeMax) {
        throw invalid('tail', `must be an integer from 1 to ${journalPageSizeMax}`);
      }
      return core.lagging(organization, async (tx) => {
        await requireOrganization(tx, organization);
        return readJournalTail(tx, organization, count);
      });
    },

    /** Calls `listener(organization)` after every committed change (in this process). */
    onChange(listener: Listener): () => void {
      core.listeners.add(listener);
      return () => core.listeners.delete(listener);
    },
});
