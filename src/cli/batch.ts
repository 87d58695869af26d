/**
 * `allot batch ORG FILE`: the operations of `POST /v1/organizations/{org}/batch` from a file
 * (the same JSON body; `-` reads stdin), decided in one go through the library. One line per
 * operation, then a summary; exit 1 when any operation was refused.
 */
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { generationOf } from '../api/etag.js';
import { BatchBody } from '../api/schemas.js';
import { invalid } from '../domain/errors.js';
import type { BatchEntry, BatchMode, BatchResult } from '../ledger/engine/batch.js';

const checkBody = new Ajv({ allErrors: true, strict: false }).compile(BatchBody);

interface FileEntry {
  op: BatchEntry['op'];
  project: string;
  id?: string;
  ifMatch?: string;
  body?: Record<string, unknown>;
}

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
  if (!checkBody(body)) {
    const first = checkBody.errors?.[0];
    throw invalid(`file${first?.instancePath.replaceAll('/', '.') ?? ''}`, first?.message ?? 'is not a batch');
  }
  const { mode, operations } = body as unknown as { mode: BatchMode; operations: FileEntry[] };
  const entries = operations.map((entry, i) => {
    const ifGeneration = generationOf(entry.ifMatch, `operations[${i}].ifMatch`);
    return { ...entry, ...(ifGeneration === undefined ? {} : { ifGeneration }) } as unknown as BatchEntry;
  });
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
