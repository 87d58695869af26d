/**
 * The journal: every ledger change appends one entry in its own transaction. Revisions are
 * numbered per organization, gap-free: the organization's row holds the last one, and the
 * UPDATE that takes the next one locks that row until the change commits, so entries of one
 * organization are in commit order (a rolled-back change takes its revision back with it).
 * Different organizations never wait on each other's journal.
 */
import type { Delta } from '../../domain/decision.js';
import type { journalActions } from '../../schemas/journal.js';
import { notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';
import type { WriteContext } from '../context.js';
import { isoOf } from '../time.js';

export type JournalAction = (typeof journalActions)[number];

export interface UsageDelta {
  kind: string;
  committed: number;
  reserved: number;
  held: number;
}

export interface JournalEntry {
  revision: number;
  organization: string;
  project: string | null;
  at: string;
  principal: string;
  action: JournalAction;
  /** The allocation or hold the entry is about (null for quota changes and corrections). */
  subject: string | null;
  /** What changed, by action: the allocation after the change, the quotas before and after… */
  changes: Record<string, unknown>;
  /** How the change moved the organization's usage counters, per kind. */
  deltas: UsageDelta[];
}

export interface JournalInput {
  organization: string;
  project: string | null;
  action: JournalAction;
  subject: string | null;
  changes: Record<string, unknown>;
  deltas: readonly Delta[];
}

/** Queues an entry; `writeJournal` writes the queue at the end of the transaction. */
export function appendJournal(context: WriteContext, input: JournalInput): void {
  context.journal.push(input);
}

export async function writeJournal(context: WriteContext): Promise<void> {
  for (const input of context.journal) await writeEntry(context, input);
  context.journal.length = 0;
}

/** The values of an entry's columns after organization and revision, in column order. */
function entryValues(context: WriteContext, input: JournalInput) {
  const deltas: UsageDelta[] = input.deltas.map(({ kind, committed, reserved, held }) => ({
    kind,
    committed,
    reserved,
    held,
  }));
  return [
    input.project,
    context.nowMs,
    context.principal,
    input.action,
    input.subject,
    JSON.stringify(input.changes),
    JSON.stringify(deltas),
  ];
}

async function writeEntry(context: WriteContext, input: JournalInput): Promise<void> {
  // Two statements on both engines: the writes that are not decisions (the decisions journal
  // in the group's own writes, engine/flush.ts) are few, so one SQL text serves both.
  const { tx } = context;
  const values = entryValues(context, input);
  const row = await tx.get<{ revision: number }>(
    'UPDATE organizations SET revision = revision + 1 WHERE id = ? RETURNING revision',
    [input.organization],
  );
  await tx.run(
    `INSERT INTO journal (organization_id, revision, project_id, at, principal, action, subject_id,
      changes, deltas) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    [input.organization, row!.revision, ...values],
  );
}

interface JournalRow {
  organization_id: string;
  revision: number;
  project_id: string | null;
  at: number;
  principal: string;
  action: JournalAction;
  subject_id: string | null;
  changes: string;
  deltas: string;
}

export async function readJournal(
  tx: Executor,
  organization: string,
  afterRevision: number,
  limit: number,
): Promise<JournalEntry[]> {
  const rows = await tx.all<JournalRow>(
    `SELECT * FROM journal WHERE organization_id = ? AND revision > ? ORDER BY revision LIMIT ?`,
    [organization, afterRevision, limit],
  );
  return rows.map(entryOf);
}

/** The organization's newest revision; 404 for an unknown organization. */
export async function readRevision(tx: Executor, organization: string): Promise<number> {
  const row = await tx.get<{ revision: number }>('SELECT revision FROM organizations WHERE id = ?', [organization]);
  if (!row) throw notFound(`organization "${organization}"`);
  return row.revision;
}

/** The newest `count` entries, oldest first: where a live feed starts without the whole journal. */
export async function readJournalTail(tx: Executor, organization: string, count: number): Promise<JournalEntry[]> {
  const rows = await tx.all<JournalRow>(
    `SELECT * FROM journal WHERE organization_id = ? ORDER BY revision DESC LIMIT ?`,
    [organization, count],
  );
  return rows.reverse().map(entryOf);
}

function entryOf(row: JournalRow): JournalEntry {
  return {
    revision: row.revision,
    organization: row.organization_id,
    project: row.project_id,
    at: isoOf(row.at),
    principal: row.principal,
    action: row.action,
    subject: row.subject_id,
    changes: JSON.parse(row.changes) as Record<string, unknown>,
    deltas: JSON.parse(row.deltas) as UsageDelta[],
  };
}
