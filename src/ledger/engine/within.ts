/**
 * One operation decided inside the caller's own transaction, by the group commit's own steps —
 * load (the same rows, the same locks), the decision type's rules, flush (the same writes and
 * journal) — for a change that must commit together with writes of the caller's: a quota
 * request's approval, whose quota change and state change are one transaction or neither.
 * `also` runs on the working set after an applied decision (to journal beside it).
 */
import { AllotError } from '../../domain/errors.js';
import type { Dialect, Executor } from '../../store/store.js';
import { expireDueHolds } from '../holds/decide.js';
import { decideOperation, planOf } from './decisions.js';
import type { OperationOutcome } from './engine.js';
import { flush } from './flush.js';
import { CountersMissing, createCounters, load } from './load.js';
import { Plan, type Operation } from './operations.js';
import type { WorkingSet } from './working-set.js';

export async function decideWithin(
  tx: Executor,
  dialect: Dialect,
  nowMs: number,
  principal: string,
  operation: Operation,
  also?: (ws: WorkingSet, value: unknown) => void,
): Promise<OperationOutcome> {
  const plan = new Plan();
  planOf(operation, plan);
  const loaded = await load(tx, dialect, plan, nowMs, true).catch(async (error: unknown) => {
    // First use of a kind here: its counter rows, then the same load again.
    if (!(error instanceof CountersMissing)) throw error;
    await createCounters(tx, dialect, error.keys, nowMs);
    return load(tx, dialect, plan, nowMs, true);
  });
  const { ws, due } = loaded;
  const expired = new Map<string, number>();
  for (const [organization, records] of due) expired.set(organization, expireDueHolds(ws, organization, records, principal));
  try {
    const value = decideOperation(ws, { principal }, operation, expired);
    also?.(ws, value);
    await flush(tx, ws);
    return { status: 'applied', value };
  } catch (error) {
    // A refusal writes nothing, not even the expiries it saw: the next decision resolves them.
    if (error instanceof AllotError) return { status: 'refused', error };
    throw error;
  }
}
