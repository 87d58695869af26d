/**
 * The decisions on quotas, on the working set: an organization's quotas, a project's caps
 * and guarantees, and a project's deletion (which gives its guarantees back). Each answers the
 * whole set as it is after the change, read from the working set.
 */
import { effectiveLimit, shortfallOf } from '../../domain/decision.js';
import { notFound } from '../../domain/errors.js';
import { unknownKinds } from '../catalog/kinds.js';
import { projectQuotaUsageOf } from './project-quotas.js';
import { QuotaChangeRefusals, quotaUsageOf } from './quotas.js';
import { checkGeneration } from '../records.js';
import type { CheckedProjectQuotaInput, CheckedQuotaInput, ProjectQuotaSet, QuotaSet } from '../types.js';
import { requireProject, type Actor } from '../allocations/decide.js';
import { counterKey, projectCounterKey, type WorkingSet } from '../engine/working-set.js';

const usedOf = (row: { committed: number; reserved: number; held: number }) => row.committed + row.reserved + row.held;
const byKind = <T extends { kind: string }>(a: T, b: T) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);

function requireKinds(ws: WorkingSet, kinds: readonly string[]): void {
  const unknown = kinds.filter((kind) => !ws.kinds.has(kind));
  if (unknown.length > 0) throw unknownKinds('quotas', unknown);
}

/** Every kind's quota and usage in the organization, as the working set has them now. */
export function quotaSetOf(ws: WorkingSet, organization: string): QuotaSet {
  const kinds = [...ws.kinds.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    organization,
    generation: ws.organization(organization)!.quotaGeneration,
    quotas: kinds.map((kind) => {
      const c = ws.counters.get(counterKey(organization, kind.name));
      return quotaUsageOf({
        name: kind.name,
        display_name: kind.displayName,
        description: kind.description,
        default_quota: c ? c.kindDefault : kind.default,
        format: kind.format,
        quota: c?.quota ?? null,
        quota_generation: c?.quotaGeneration ?? null,
        committed: c?.committed ?? null,
        reserved: c?.reserved ?? null,
        held: c?.held ?? null,
        guaranteed: c?.guaranteed ?? null,
        shortfall: c?.shortfall ?? null,
        updated_by: c?.updatedBy ?? null,
      });
    }),
  };
}

/** Every kind's cap, guarantee and usage in the project, as the working set has them now. */
export function projectQuotaSetOf(ws: WorkingSet, organization: string, project: string): ProjectQuotaSet {
  const kinds = [...ws.kinds.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    organization,
    project,
    generation: ws.project(organization, project)!.quotaGeneration,
    quotas: kinds.map((kind) => {
      const p = ws.projectCounters.get(projectCounterKey(organization, project, kind.name));
      const c = ws.counters.get(counterKey(organization, kind.name));
      return projectQuotaUsageOf({
        name: kind.name,
        display_name: kind.displayName,
        format: kind.format,
        cap: p?.cap ?? null,
        guaranteed: p?.guaranteed ?? null,
        committed: p?.committed ?? null,
        reserved: p?.reserved ?? null,
        held: p?.held ?? null,
        updated_by: p?.updatedBy ?? null,
        quota: c?.quota ?? null,
        default_quota: c ? c.kindDefault : kind.default,
        organization_used: c ? usedOf(c) : null,
        shortfall: c?.shortfall ?? null,
      });
    }),
  };
}

/**
 * Sets (or, with quantity null, removes) the organization's quotas for the listed kinds. A cut
 * below usage, or below usage plus what the guarantees keep back, is refused unless `force`;
 * below the sum of the guarantees always. A stale `ifGeneration` is answered first (412).
 */
export function setQuotas(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  inputs: readonly CheckedQuotaInput[],
  force: boolean,
  ifGeneration: number | undefined,
): QuotaSet {
  const current = ws.organization(organization);
  if (!current) throw notFound(`organization "${organization}"`);
  const sorted = [...inputs].sort(byKind);
  requireKinds(ws, sorted.map((input) => input.kind));
  const refusals = new QuotaChangeRefusals();
  const changes: { kind: string; before: number | null; after: number | null }[] = [];
  for (const input of sorted) {
    const row = ws.counter(organization, input.kind);
    const refused = refusals.checkOrganization(input.kind, {
      used: usedOf(row),
      guaranteed: row.guaranteed,
      shortfall: row.shortfall,
      limit: effectiveLimit(input.quantity, row.kindDefault),
      force,
    });
    if (!refused) changes.push({ kind: input.kind, before: row.quota, after: input.quantity });
  }
  checkGeneration({ generation: current.quotaGeneration }, ifGeneration);
  refusals.throwIfAny();
  for (const change of changes) {
    const row = ws.counter(organization, change.kind);
    ws.set(row, { quota: change.after, quotaGeneration: row.quotaGeneration + 1, updatedBy: actor.principal });
  }
  ws.set(current, { quotaGeneration: current.quotaGeneration + 1 });
  ws.appendJournal({
    organization,
    project: null,
    principal: actor.principal,
    action: 'quota.set',
    subject: null,
    changes: JSON.stringify({ quotas: changes, force }),
    deltas: '[]',
  });
  return quotaSetOf(ws, organization);
}

/**
 * Sets the listed kinds' caps and guarantees of a project. A cap below the project's usage is
 * refused unless `force`; a raised guarantee is refused if the guarantees would add up to more
 * than the organization's quota (always), or leave usage plus what they keep back above it
 * (unless `force`). Lowering a guarantee is always allowed.
 */
export function setProjectQuotas(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  inputs: readonly CheckedProjectQuotaInput[],
  force: boolean,
  ifGeneration: number | undefined,
): ProjectQuotaSet {
  requireProject(ws, organization, project);
  const current = ws.project(organization, project)!;
  const sorted = [...inputs].sort(byKind);
  requireKinds(ws, sorted.map((input) => input.kind));
  const refusals = new QuotaChangeRefusals();
  const changes: { kind: string; before: { cap: number | null; guaranteed: number }; after: { cap: number | null; guaranteed: number }; shortfall: number }[] = [];
  for (const input of sorted) {
    const own = ws.projectCounter(organization, project, input.kind);
    const row = ws.counter(organization, input.kind);
    const projectUsed = usedOf(own);
    const shortfall = shortfallOf(input.guaranteed, projectUsed) - shortfallOf(own.guaranteed, projectUsed);
    let refused = refusals.checkCap(input.kind, input.cap, projectUsed, force);
    // Only a raised guarantee is judged: lowering one never takes anything from anyone.
    if (input.guaranteed > own.guaranteed) {
      refused =
        refusals.checkOrganization(
          input.kind,
          {
            used: usedOf(row),
            guaranteed: row.guaranteed - own.guaranteed + input.guaranteed,
            shortfall: row.shortfall + shortfall,
            limit: effectiveLimit(row.quota, row.kindDefault),
            force,
          },
          'guarantee',
        ) || refused;
    }
    if (refused) continue;
    changes.push({
      kind: input.kind,
      before: { cap: own.cap, guaranteed: own.guaranteed },
      after: { cap: input.cap, guaranteed: input.guaranteed },
      shortfall,
    });
  }
  checkGeneration({ generation: current.quotaGeneration }, ifGeneration);
  refusals.throwIfAny();
  for (const change of changes) {
    const own = ws.projectCounter(organization, project, change.kind);
    const row = ws.counter(organization, change.kind);
    ws.set(own, { cap: change.after.cap, guaranteed: change.after.guaranteed, updatedBy: actor.principal });
    ws.set(row, {
      guaranteed: row.guaranteed + change.after.guaranteed - change.before.guaranteed,
      shortfall: row.shortfall + change.shortfall,
    });
  }
  ws.set(current, { quotaGeneration: current.quotaGeneration + 1 });
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'project-quota.set',
    subject: null,
    changes: JSON.stringify({ quotas: changes.map(({ kind, before, after }) => ({ kind, before, after })), force }),
    deltas: '[]',
  });
  return projectQuotaSetOf(ws, organization, project);
}
