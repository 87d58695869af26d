/** Reading an organization's journal through the library, as the tests that replay it need. */
import type { Ledger } from '../../src/index.js';
import type { JournalEntry } from '../../src/ledger/journal/journal.js';

/** Every entry of `organization`'s journal, from revision 1, read page by page. */
export async function readAll(ledger: Ledger, organization: string): Promise<JournalEntry[]> {
  const entries: JournalEntry[] = [];
  for (;;) {
    const page = await ledger.readJournal(organization, entries.at(-1)?.revision ?? 0, 1000);
    if (page.length === 0) return entries;
    entries.push(...page);
  }
}
