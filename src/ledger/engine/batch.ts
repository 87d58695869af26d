/**
 * Batches: many operations of one organization in one decision. `independent`: each succeeds
 * or fails on its own, as if sent alone; `atomic`: all or none (TigerBeetle's linked events) —
 * how a resource moves between projects, or two allocations swap, in one step. An entry that
 * cannot even be built (a malformed body, a project the caller may not see) is refused before
 * the decision; in an atomic batch that refuses the whole batch.
 */
import { batchOperationsMax } from '../../domain/constants.js';
import { AllotError } from '../../domain/errors.js';
import type { AllocationInput, ConfirmInput, HoldInput } from '../types.js';
import { build } from './build.js';
import type { OperationOutcome } from './engine.js';
import type { Operation } from './operations.js';

/** One entry of a batch, as the library takes it (the API's entries become these). */
export type BatchEntry =
  | { op: 'allocation.create'; project: string; body: AllocationInput }
  | { op: 'allocation.replace'; project: string; id: string; body: AllocationInput; ifGeneration?: number }
  | { op: 'allocation.delete'; project: string; id: string; ifGeneration?: number }
  | { op: 'hold.create'; project: string; body: HoldInput }
  | { op: 'hold.confirm'; project: string; id: string; body?: ConfirmInput; ifGeneration?: number }
  | { op: 'hold.release'; project: string; id: string; ifGeneration?: number };

export type BatchMode = 'independent' | 'atomic';

export interface BatchResult {
  mode: BatchMode;
  /** Per entry, in order: applied (with its value), refused (with why), or not applied. */
  results: OperationOutcome[];
}

/** An entry built into its operation, or refused before the decision. */
export type Prepared = { operation: Operation } | { error: AllotError };

export function checkBatchSize(count: number): void {
  if (count > batchOperationsMax) {
    throw new AllotError('payload-too-large', `a batch holds at most ${batchOperationsMax} operations, not ${count}`);
  }
  if (count === 0) throw new AllotError('invalid-request', 'a batch holds at least one operation', { errors: [{ field: 'operations', message: 'must not be empty' }] });
}

/** Builds one entry's operation (checking its input as its route would), or its refusal. */
export function prepareEntry(organization: string, entry: BatchEntry): Prepared {
  try {
    return { operation: operationOf(organization, entry) };
  } catch (error) {
    if (error instanceof AllotError) return { error };
    throw error;
  }
}

function operationOf(organization: string, entry: BatchEntry): Operation {
  switch (entry.op) {
    case 'allocation.create':
      return build.createAllocation(organization, entry.project, entry.body);
    case 'allocation.replace':
      return build.replaceAllocation(organization, entry.project, entry.id, entry.body, entry.ifGeneration);
    case 'allocation.delete':
      return build.deleteAllocation(organization, entry.project, entry.id, entry.ifGeneration);
    case 'hold.create':
      return build.createHold(organization, entry.project, entry.body);
    case 'hold.confirm':
      return build.confirmHold(organization, entry.project, entry.id, entry.body ?? {}, entry.ifGeneration);
    case 'hold.release':
      return build.releaseHold(organization, entry.project, entry.id, entry.ifGeneration);
  }
}

/** The operations to decide: none in an atomic batch with a refused entry (it is refused whole). */
export function operationsOf(prepared: readonly Prepared[], mode: BatchMode): Operation[] {
  if (mode === 'atomic' && prepared.some((entry) => 'error' in entry)) return [];
  return prepared.flatMap((entry) => ('operation' in entry ? [entry.operation] : []));
}

/** Every entry's outcome: the decided ones' in their places, the refused ones' beside them. */
export function mergeOutcomes(prepared: readonly Prepared[], mode: BatchMode, decided: readonly OperationOutcome[]): OperationOutcome[] {
  const refused = prepared.findIndex((entry) => 'error' in entry);
  if (mode === 'atomic' && refused >= 0) {
    return prepared.map((entry, i) => (i === refused ? { status: 'refused', error: (entry as { error: AllotError }).error } : { status: 'not-applied' }));
  }
  let next = 0;
  return prepared.map((entry) => ('error' in entry ? { status: 'refused', error: entry.error } : decided[next++]!));
}
