/**
 * The decisions on envelopes, on the working set: an organization's quotas, a project's caps
 * and guarantees, and a project's deletion (which gives its guarantees back). Each answers the
 * whole set as it is after the change, read from the working set.
 */
import { deltasBetween, effectiveLimit, shortfallOf, usageOf } from '../../domain/decision.js';
import { AllotError, notFound } from '../../domain/errors.js';
import { unknownKinds } from '../kinds.js';
import { projectQuotaUsageOf } from '../project-quotas.js';
import { EnvelopeRefusals, quotaUsageOf } from '../quotas.js';
import { checkGeneration } from '../records.js';
import type { CheckedProjectQuotaInput, CheckedQuotaInput, ProjectQuotaSet, QuotaSet } from '../types.js';
import { deltasJson, requireProject, type Actor } from './allocations.js';
import { applyUsage } from './usage.js';
import { counterKey, projectCounterKey, type WorkingSet } from './working-set.js';

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
  const refusals = new EnvelopeRefusals();
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
  const refusals = new EnvelopeRefusals();
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

/**
 * Deletes a project: refused (project-not-empty) while it has live allocations or pending
 * holds, unless `cascade`, which deletes and releases them (journaled). Its caps and
 * guarantees go with it (the guarantees are given back), and at flush its limits, regions and
 * project-member tokens. Returns what the cascade ended.
 */
export function deleteProject(
  ws: WorkingSet,
  actor: Actor,
  organization: string,
  project: string,
  cascade: boolean,
): { allocations: number; holds: number } {
  requireProject(ws, organization, project);
  const records = [...ws.records.values()]
    .filter(({ row }) => row.organization_id === organization && row.project_id === project && row.deleted_at === null)
    .sort((a, b) => (a.row.id < b.row.id ? -1 : 1));
  const live = {
    allocations: records.filter(({ row }) => row.state === 'live').length,
    holds: records.filter(({ row }) => row.state === 'held').length,
  };
  if (records.length > 0 && !cascade) {
    throw new AllotError(
      'project-not-empty',
      `project "${project}" has ${live.allocations} live allocations and ${live.holds} pending holds`,
      { live },
    );
  }
  for (const record of records) {
    const { row, lines } = record;
    const held = row.state === 'held';
    const deltas = deltasBetween(usageOf(lines, held ? 'held' : 'live'), []);
    applyUsage(ws, organization, project, deltas);
    ws.set(row, {
      ...(held ? { resolution: 'released' as const, resolved_at: ws.nowMs } : {}),
      deleted_at: ws.nowMs,
      generation: row.generation + 1,
      updated_by: actor.principal,
      updated_at: ws.nowMs,
    });
    ws.put(ws.liveResources, `${organization}\u0000${row.resource_kind}\u0000${row.resource_id}`, null);
    const resource = { kind: row.resource_kind, id: row.resource_id };
    ws.appendJournal({
      organization,
      project,
      principal: actor.principal,
      action: held ? 'hold.released' : 'allocation.deleted',
      subject: row.id,
      changes: JSON.stringify(held ? { resource, held: lines, cascade: true } : { resource, before: lines, after: null, cascade: true }),
      deltas: deltasJson(deltas),
    });
  }
  // Its guarantees are given back: the sum and the shortfall lose what the project had.
  for (const own of ws.projectCounters.values()) {
    if (own.organization !== organization || own.project !== project || own.removed) continue;
    if (own.guaranteed > 0) {
      const row = ws.counter(organization, own.kind);
      ws.set(row, {
        guaranteed: row.guaranteed - own.guaranteed,
        shortfall: row.shortfall - shortfallOf(own.guaranteed, usedOf(own)),
      });
    }
    ws.set(own, { removed: true });
  }
  const state = ws.project(organization, project)!;
  ws.set(state, { deletedAt: ws.nowMs });
  ws.push(ws.deletedProjects, state);
  ws.appendJournal({
    organization,
    project,
    principal: actor.principal,
    action: 'project.deleted',
    subject: null,
    changes: JSON.stringify({ cascade, ended: live }),
    deltas: '[]',
  });
  return live;
}
