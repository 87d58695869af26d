/**
 * A project's deletion, on the working set: refused while it has live allocations or pending
 * holds unless cascading (then each is ended and journaled); its project quotas go with it.
 */
import { deltasBetween, shortfallOf, usageOf } from '../../domain/decision.js';
import { AllotError } from '../../domain/errors.js';
import { deltasJson, requireProject, type Actor } from '../allocations/decide.js';
import { applyUsage } from '../engine/usage.js';
import { type WorkingSet } from '../engine/working-set.js';

const usedOf = (row: { committed: number; reserved: number; held: number }) => row.committed + row.reserved + row.held;

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
