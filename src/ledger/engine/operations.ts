/**
 * The operations a decision is made of, what each must have loaded (its plan), and what each
 * answers. Every mutating call of the ledger, every batch entry and the sweeper's expiries are
 * one of these; engine.ts queues them and decides them in groups.
 */
import type { Line } from '../../domain/decision.js';
import type {
  Allocation,
  CheckedAllocationInput,
  CheckedHoldInput,
  CheckedProjectQuotaInput,
  CheckedQuotaInput,
  Hold,
  ProjectQuotaSet,
  QuotaSet,
} from '../types.js';

/** What the identity-compatibility API keeps with an allocation (written with it). */
export interface AllocationMetadata {
  name: string;
  description: string | null;
  /** JSON text. */
  tags: string | null;
}

export type Operation =
  | { op: 'allocation.create'; organization: string; project: string; id: string; input: CheckedAllocationInput; metadata?: AllocationMetadata }
  | { op: 'allocation.replace'; organization: string; project: string; id: string; input: CheckedAllocationInput; ifGeneration?: number; metadata?: AllocationMetadata }
  | { op: 'allocation.delete'; organization: string; project: string; id: string; ifGeneration?: number }
  | { op: 'hold.create'; organization: string; project: string; id: string; input: CheckedHoldInput }
  | { op: 'hold.confirm'; organization: string; project: string; id: string; lines?: Line[]; ifGeneration?: number }
  | { op: 'hold.release'; organization: string; project: string; id: string; ifGeneration?: number }
  | { op: 'quota.set'; organization: string; inputs: CheckedQuotaInput[]; force: boolean; ifGeneration?: number }
  | { op: 'project-quota.set'; organization: string; project: string; inputs: CheckedProjectQuotaInput[]; force: boolean; ifGeneration?: number }
  | { op: 'project.delete'; organization: string; project: string; cascade: boolean }
  | { op: 'holds.expire'; organization: string };

export type OperationName = Operation['op'];

/** What each operation answers. */
export interface Results {
  'allocation.create': Allocation;
  'allocation.replace': Allocation;
  'allocation.delete': { deleted: boolean };
  'hold.create': Hold;
  'hold.confirm': Hold;
  'hold.release': Hold;
  'quota.set': QuotaSet;
  'project-quota.set': ProjectQuotaSet;
  'project.delete': { allocations: number; holds: number };
  'holds.expire': { expired: number };
}

export type ResultOf<O extends Operation> = Results[O['op']];

/** The strongest lock the group's projects need: decisions key-share, project quota changes update, deletion excludes. */
export type ProjectLock = 'key-share' | 'no-key-update' | 'update';

/** What a group must load, under which locks. */
export class Plan {
  readonly organizations = new Set<string>();
  readonly projects = new Map<string, { organization: string; project: string }>();
  projectLock: ProjectLock = 'key-share';
  readonly records = new Set<string>();
  /** Projects whose live records are all loaded (a deletion). */
  readonly projectRecords = new Map<string, { organization: string; project: string }>();
  readonly resources = new Map<string, { organization: string; kind: string; id: string }>();
  readonly kinds = new Set<string>();
  /** Organizations whose every kind and counter is loaded (answers that list every kind). */
  readonly allKindsOf = new Set<string>();
  /** Every resource kind is loaded (a project's deletion may meet any). */
  everyKind = false;
  /** Projects whose every counter is loaded. */
  readonly allProjectCountersOf = new Map<string, { organization: string; project: string }>();
  /** Counter rows to create if missing and lock: a project's (project set) or an organization's. */
  readonly counters = new Map<string, { organization: string; project: string | null; kind: string }>();
  readonly keys = new Map<string, { principal: string; key: string }>();

  project(organization: string, project: string): void {
    this.organizations.add(organization);
    this.projects.set(`${organization}\u0000${project}`, { organization, project });
  }

  lockProjects(lock: ProjectLock): void {
    const strength = { 'key-share': 0, 'no-key-update': 1, update: 2 } as const;
    if (strength[lock] > strength[this.projectLock]) this.projectLock = lock;
  }

  resource(organization: string, kind: string, id: string): void {
    this.resources.set(`${organization}\u0000${kind}\u0000${id}`, { organization, kind, id });
  }

  counter(organization: string, project: string | null, kind: string): void {
    this.kinds.add(kind);
    this.counters.set(`${organization}\u0000${project ?? ''}\u0000${kind}`, { organization, project, kind });
    if (project !== null) this.counter(organization, null, kind);
  }
}
