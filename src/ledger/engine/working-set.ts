/**
 * The rows one group of decisions works on, read under their locks at the start of the
 * group's transaction (load.ts), changed in memory by the decisions one after another, and
 * written back at the end (flush.ts). Every change goes through `set` (or an undoable map
 * operation), which logs how to undo it: a refused decision rolls back to its savepoint and
 * leaves no trace, so its neighbours in the group decide as if it had never run.
 *
 * What changed is found at flush time by comparing each row with the copy taken when it was
 * loaded, so nothing needs to track "dirty" rows and an undone change writes nothing.
 */
import { assert } from '../../domain/assert.js';
import type { Line } from '../../domain/decision.js';
import type { StoredResponse } from '../idempotency/keys.js';
import type { JournalAction } from '../journal/journal.js';
import type { AllocationRow } from '../records.js';
import type { KindFormat } from '../types.js';

export interface KindState {
  name: string;
  displayName: string;
  description: string;
  default: number | null;
  format: KindFormat;
}

export interface OrganizationState {
  id: string;
  revision: number;
  quotaGeneration: number;
}

export interface ProjectState {
  organization: string;
  id: string;
  quotaGeneration: number;
  /** Set by a project's deletion in this group. */
  deletedAt: number | null;
}

/** One organization's counter of one kind: its quota and the usage of all its projects. */
export interface CounterState {
  organization: string;
  kind: string;
  quota: number | null;
  kindDefault: number | null;
  quotaGeneration: number;
  committed: number;
  reserved: number;
  held: number;
  /** The sum of the projects' guarantees, and of what they keep back unused (their shortfall). */
  guaranteed: number;
  shortfall: number;
  updatedBy: string | null;
}

/** One project's counter of one kind: its cap and guarantee, and its usage. */
export interface ProjectCounterState {
  organization: string;
  project: string;
  kind: string;
  cap: number | null;
  guaranteed: number;
  committed: number;
  reserved: number;
  held: number;
  updatedBy: string | null;
  /** Set by a project's deletion in this group: the row goes. */
  removed: boolean;
}

/** A row of `allocations` (a live allocation or a hold, ended or not) with its lines. */
export interface RecordState {
  row: AllocationRow;
  lines: Line[];
  /** Written by the identity-compatibility API with the allocation. */
  metadata?: { name: string; description: string | null; tags: string | null };
}

/** A journal entry of this group, its revision taken from the organization's row. */
export interface JournalRow {
  organization: string;
  revision: number;
  project: string | null;
  at: number;
  principal: string;
  action: JournalAction;
  subject: string | null;
  changes: string;
  deltas: string;
}

/** An idempotency key as stored: the response to replay, or a claim still in progress. */
export interface KeyState {
  principal: string;
  key: string;
  requestHash: string;
  state: 'pending' | 'done';
  response: StoredResponse | null;
  createdAt: number;
}

const keyOf = (...parts: readonly string[]) => parts.join('\u0000');

export const counterKey = (organization: string, kind: string) => keyOf(organization, kind);
export const projectCounterKey = (organization: string, project: string, kind: string) =>
  keyOf(organization, project, kind);
export const projectKey = (organization: string, project: string) => keyOf(organization, project);
export const resourceKey = (organization: string, kind: string, id: string) => keyOf(organization, kind, id);
export const idempotencyKey = (principal: string, key: string) => keyOf(principal, key);

type Undo = () => void;

export class WorkingSet {
  readonly kinds = new Map<string, KindState>();
  readonly organizations = new Map<string, OrganizationState>();
  /** Projects that exist (not deleted); a project asked for and absent is not in the map. */
  readonly projects = new Map<string, ProjectState>();
  readonly counters = new Map<string, CounterState>();
  readonly projectCounters = new Map<string, ProjectCounterState>();
  readonly records = new Map<string, RecordState>();
  /** The live allocation or pending hold of each referenced resource asked about (null: none). */
  readonly liveResources = new Map<string, string | null>();
  readonly keys = new Map<string, KeyState | null>();
  /** The organizations whose every kind (and counter) is loaded, for answers that list all. */
  readonly allKindsOf = new Set<string>();
  readonly journal: JournalRow[] = [];
  /** Projects deleted in this group: their limits, regions and tokens go at flush. */
  readonly deletedProjects: ProjectState[] = [];

  /** The rows as loaded, to find at flush time what changed. */
  readonly loaded = {
    organizations: new Map<string, OrganizationState>(),
    projects: new Map<string, ProjectState>(),
    counters: new Map<string, CounterState>(),
    projectCounters: new Map<string, ProjectCounterState>(),
    records: new Map<string, RecordState>(),
    keys: new Map<string, KeyState | null>(),
  };

  private readonly undos: Undo[] = [];

  constructor(readonly nowMs: number) {}

  /** Records a row as loaded (and keeps a copy to compare with at flush time). */
  load<T extends object | null>(map: Map<string, T>, loaded: Map<string, T>, key: string, row: T): void {
    map.set(key, row);
    loaded.set(key, structuredClone(row));
  }

  /** Changes some fields of a row, undoably. */
  set<T extends object>(row: T, patch: Partial<T>): void {
    const before: Partial<T> = {};
    for (const name of Object.keys(patch) as (keyof T)[]) before[name] = row[name];
    Object.assign(row, patch);
    this.undos.push(() => Object.assign(row, before));
  }

  /** Sets a map entry, undoably. */
  put<K, V>(map: Map<K, V>, key: K, value: V): void {
    const had = map.has(key);
    const before = map.get(key);
    map.set(key, value);
    this.undos.push(() => (had ? map.set(key, before as V) : map.delete(key)));
  }

  /** Appends to a list, undoably. */
  push<T>(list: T[], item: T): void {
    list.push(item);
    this.undos.push(() => {
      assert(list.at(-1) === item, 'undo in order');
      list.pop();
    });
  }

  savepoint(): number {
    return this.undos.length;
  }

  rollbackTo(savepoint: number): void {
    while (this.undos.length > savepoint) this.undos.pop()!();
  }

  /**
   * Puts every row of one organization back as loaded: for expiries no decision of the group
   * kept (a refused request writes nothing, not even the expiries it saw). Only for an
   * organization whose decisions in the group were all undone.
   */
  revertOrganization(organization: string): void {
    const restore = <T extends object>(map: Map<string, T>, loaded: Map<string, T>, belongs: (row: T) => boolean) => {
      for (const [key, row] of map) {
        const original = loaded.get(key);
        if (original && belongs(row)) Object.assign(row, structuredClone(original));
      }
    };
    restore(this.counters, this.loaded.counters, (row) => row.organization === organization);
    restore(this.projectCounters, this.loaded.projectCounters, (row) => row.organization === organization);
    restore(this.organizations, this.loaded.organizations, (row) => row.id === organization);
    for (const [id, record] of this.records) {
      const original = this.loaded.records.get(id);
      if (!original || record.row.organization_id !== organization) continue;
      Object.assign(record.row, structuredClone(original.row));
      record.lines = structuredClone(original.lines);
      if (record.row.deleted_at === null) {
        this.liveResources.set(resourceKey(organization, record.row.resource_kind, record.row.resource_id), record.row.id);
      }
    }
    for (let i = this.journal.length - 1; i >= 0; i -= 1) {
      if (this.journal[i]!.organization === organization) this.journal.splice(i, 1);
    }
  }

  organization(id: string): OrganizationState | undefined {
    return this.organizations.get(id);
  }

  project(organization: string, id: string): ProjectState | undefined {
    const project = this.projects.get(projectKey(organization, id));
    return project?.deletedAt === null ? project : undefined;
  }

  counter(organization: string, kind: string): CounterState {
    const counter = this.counters.get(counterKey(organization, kind));
    assert(counter !== undefined, `counter ${organization}/${kind} was not loaded`);
    return counter;
  }

  projectCounter(organization: string, project: string, kind: string): ProjectCounterState {
    const counter = this.projectCounters.get(projectCounterKey(organization, project, kind));
    assert(counter !== undefined, `counter ${organization}/${project}/${kind} was not loaded`);
    return counter;
  }

  liveResource(organization: string, kind: string, id: string): string | null {
    const found = this.liveResources.get(resourceKey(organization, kind, id));
    assert(found !== undefined, `resource ${kind}/${id} was not looked up`);
    return found;
  }

  /** Appends a journal entry under the organization's next revision. */
  appendJournal(entry: Omit<JournalRow, 'revision' | 'at'>): void {
    const organization = this.organizations.get(entry.organization);
    assert(organization !== undefined, `organization ${entry.organization} was not loaded`);
    this.set(organization, { revision: organization.revision + 1 });
    this.push(this.journal, { ...entry, revision: organization.revision, at: this.nowMs });
  }
}
