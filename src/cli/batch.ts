/**
 * `allot batch ORG FILE`: the operations of `POST /v1/organizations/{org}/batch` from a file
 * (the same JSON body; `-` reads stdin), each entry checked as the route checks it, then
 * decided in one go through the library. One line per operation, then a summary; exit 1 when
 * any operation was refused.
 */
import { readFileSync } from 'node:fs';
import { checkBatchBody, entryOf, type Entry } from '../api/routes/batch.js';
import { invalid } from '../domain/errors.js';
import type { BatchEntry, BatchMode, BatchResult } from '../ledger/engine/batch.js';

/** The file's operations as library entries; `--atomic` overrides the file's mode. */
export function readBatch(file: string, atomic: boolean): { mode: BatchMode; entries: BatchEntry[] } {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalid('file', `is not JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
  // A bare array of operations is the batch's operations.
  const given = (Array.isArray(parsed) ? { operations: parsed } : parsed) as Record<string, unknown> | null;
  const body = { ...given, mode: atomic ? 'atomic' : (given?.mode ?? 'independent') };
  if (!checkBatchBody(body)) {
    const first = checkBatchBody.errors?.[0];
    // `/operations/0/id` → `operations[0].id`; the body as a whole is the file.
    const field = (first?.instancePath ?? '').split('/').filter(Boolean).reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part), '');
    throw invalid(field || 'file', first?.message ?? 'is not a batch');
  }
  const { mode, operations } = body as unknown as { mode: BatchMode; operations: Entry[] };
  // Each entry checked as its route checks it (the id, If-Match and body it takes): a
  // malformed one refuses the file, named by its place in it.
  const entries = operations.map((entry, i) => entryOf(entry, i, 'atomic', (field) => `operations[${i}].${field}`));
  return { mode, entries };
}

/** One line per operation: applied (with the record's id), refused (with why) or not applied. */
export function describeBatch(entries: readonly BatchEntry[], result: BatchResult, dryRun: boolean): string[] {
  const lines = result.results.map((outcome, i) => {
    const entry = entries[i]!;
    const what = `${i} ${entry.op} ${entry.project}${'id' in entry ? `/${entry.id}` : ''}`;
    switch (outcome.status) {
      case 'applied': {
        const value = outcome.value as { id?: string; generation?: number } | undefined;
        return `${what}: applied${value?.id ? ` ${value.id}` : ''}${value?.generation ? ` (generation ${value.generation})` : ''}`;
      }
      case 'refused':
        return `${what}: refused ${outcome.error.code}: ${outcome.error.detail}`;
      case 'not-applied':
        return `${what}: not applied`;
    }
  });
  const count = (status: string) => result.results.filter((outcome) => outcome.status === status).length;
  lines.push(
    `batch (${result.mode}): ${count('applied')} applied, ${count('refused')} refused, ${count('not-applied')} not applied` +
      (dryRun ? ' — dry run, nothing written' : ''),
  );
  return lines;
}
