/**
 * The decision types, one row each: what a group must load for the operation (its plan: the
 * rows its answer depends on, under which locks), and how it is decided on the working set
 * (in its concern's folder). The engine asks only this table, so a new decision type is an
 * operation in operations.ts, its `decide` function beside its concern, and one row here.
 */
import { deleteProject } from '../catalog/decide.js';
import { createAllocation, deleteAllocation, replaceAllocation, type Actor } from '../allocations/decide.js';
import { confirmHold, createHold, releaseHold } from '../holds/decide.js';
import { setProjectQuotas, setQuotas } from '../quotas/decide.js';
import type { Operation, OperationName, Plan } from './operations.js';
import type { WorkingSet } from './working-set.js';

type Of<N extends OperationName> = Extract<Operation, { op: N }>;

interface DecisionType<O extends Operation> {
  /** Registers in `plan` what deciding `operation` reads (the organization is always loaded). */
  plan(operation: O, plan: Plan): void;
  /**
   * Decides `operation` on the rows loaded under lock: its result, or its refusal thrown.
   * `expired`: the holds the group expired per organization before deciding.
   */
  decide(ws: WorkingSet, actor: Actor, operation: O, expired: ReadonlyMap<string, number>): unknown;
}

/** An allocation or hold's create or replace: its project, its resource, its kinds' counters. */
function planLines(operation: Of<'allocation.create' | 'allocation.replace' | 'hold.create'>, plan: Plan): void {
  plan.project(operation.organization, operation.project);
  const { resource, allocations } = operation.input;
  plan.resource(operation.organization, resource.kind, resource.id);
  for (const line of allocations) plan.counter(operation.organization, operation.project, line.kind);
}

/** A change of an existing allocation or hold: its project and its record. */
function planRecord(operation: Of<'allocation.delete' | 'hold.confirm' | 'hold.release'>, plan: Plan): void {
  plan.project(operation.organization, operation.project);
  plan.records.add(operation.id);
}

export const decisionTypes: { [N in OperationName]: DecisionType<Of<N>> } = {
  'allocation.create': {
    plan: planLines,
    decide: (ws, actor, o) => createAllocation(ws, actor, o.organization, o.project, o.id, o.input, o.metadata),
  },
  'allocation.replace': {
    plan: (o, plan) => {
      planLines(o, plan);
      plan.records.add(o.id);
    },
    decide: (ws, actor, o) =>
      replaceAllocation(ws, actor, o.organization, o.project, o.id, o.input, o.ifGeneration, o.metadata),
  },
  'allocation.delete': {
    plan: planRecord,
    decide: (ws, actor, o) => deleteAllocation(ws, actor, o.organization, o.project, o.id, o.ifGeneration),
  },
  'hold.create': {
    plan: planLines,
    decide: (ws, actor, o) => createHold(ws, actor, o.organization, o.project, o.id, o.input),
  },
  'hold.confirm': {
    plan: planRecord,
    decide: (ws, actor, o) => confirmHold(ws, actor, o.organization, o.project, o.id, o.lines, o.ifGeneration),
  },
  'hold.release': {
    plan: planRecord,
    decide: (ws, actor, o) => releaseHold(ws, actor, o.organization, o.project, o.id, o.ifGeneration),
  },
  'quota.set': {
    plan: (o, plan) => {
      plan.allKindsOf.add(o.organization);
      for (const input of o.inputs) plan.counter(o.organization, null, input.kind);
    },
    decide: (ws, actor, o) => setQuotas(ws, actor, o.organization, o.inputs, o.force, o.ifGeneration),
  },
  'project-quota.set': {
    plan: (o, plan) => {
      plan.project(o.organization, o.project);
      plan.lockProjects('no-key-update');
      plan.allKindsOf.add(o.organization);
      plan.everyKind = true;
      plan.allProjectCountersOf.set(`${o.organization}\u0000${o.project}`, o);
      for (const input of o.inputs) plan.counter(o.organization, o.project, input.kind);
    },
    decide: (ws, actor, o) => setProjectQuotas(ws, actor, o.organization, o.project, o.inputs, o.force, o.ifGeneration),
  },
  'project.delete': {
    plan: (o, plan) => {
      plan.project(o.organization, o.project);
      plan.lockProjects('update');
      plan.projectRecords.set(`${o.organization}\u0000${o.project}`, o);
      plan.everyKind = true;
      plan.allProjectCountersOf.set(`${o.organization}\u0000${o.project}`, o);
    },
    decide: (ws, actor, o) => deleteProject(ws, actor, o.organization, o.project, o.cascade),
  },
  // The group expires due holds before deciding (engine.ts): this answers how many it expired.
  'holds.expire': {
    plan: () => undefined,
    decide: (_ws, _actor, o, expired) => ({ expired: expired.get(o.organization) ?? 0 }),
  },
};

/** Registers what `operation` needs in `plan` (the rows its answer may depend on). */
export function planOf(operation: Operation, plan: Plan): void {
  plan.organizations.add(operation.organization);
  (decisionTypes[operation.op] as DecisionType<Operation>).plan(operation, plan);
}

/** Decides `operation` on the working set (see DecisionType.decide). */
export function decideOperation(ws: WorkingSet, actor: Actor, operation: Operation, expired: ReadonlyMap<string, number>): unknown {
  return (decisionTypes[operation.op] as DecisionType<Operation>).decide(ws, actor, operation, expired);
}
