/**
 * What happens to a quota request, each in one transaction. An approval — by a person, by
 * policy, or a decrease by someone who may set the value — claims the request (it leaves
 * pending) and applies the change through the decision path (engine/within.ts) in the same
 * transaction: a change the rules refuse rolls the claim back, and the request stays pending.
 */
import { v7 as uuidv7 } from 'uuid';
import { AllotError, invalid, notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';
import type { WriteContext } from '../context.js';
import { build } from '../engine/build.js';
import type { Operation } from '../engine/operations.js';
import { decideWithin } from '../engine/within.js';
import type { WorkingSet } from '../engine/working-set.js';
import { appendJournal, type JournalAction } from '../journal/journal.js';
import { checkQuantity } from '../validate.js';
import { organizationValues, projectValues } from '../quotas/values.js';
import { approvesByPolicy, policyOf } from './policies.js';
import { insertRequest, leavePending, openRequest, readRequestRow, requestOf, resolved, stillOpen, type QuotaRequestInput, type RequestRow } from './requests.js';

/** Whoever asks; `mayApply`: their role may set the value itself (a decrease then applies at once). */
export interface Requester {
  principal: string;
  mayApply: boolean;
}

/** The value in force of what a request is about (null: none, unlimited). */
async function currentValue(tx: Executor, row: Pick<RequestRow, 'organization_id' | 'project_id' | 'field' | 'kind'>): Promise<number | null> {
  const values = await organizationValues(tx, row.organization_id, row.kind);
  if (values.kindDefault === undefined) throw invalid('kind', `resource kind "${row.kind}" does not exist`);
  if (row.project_id === null) return values.quota ?? values.kindDefault;
  const project = await projectValues(tx, row.organization_id, row.project_id, row.kind);
  if (!project) throw notFound(`project "${row.project_id}"`);
  return row.field === 'cap' ? project.cap : project.guaranteed;
}

/** The quota change that grants `granted`: the organization's quota, or the project's cap or guarantee (keeping the other). */
async function changeOf(tx: Executor, row: RequestRow, granted: number, force: boolean): Promise<Operation> {
  if (row.project_id === null) return build.setQuotas(row.organization_id, [{ kind: row.kind, quantity: granted }], force);
  const project = await projectValues(tx, row.organization_id, row.project_id, row.kind);
  if (!project) throw notFound(`project "${row.project_id}"`);
  const cap = row.field === 'cap' ? granted : project.cap;
  const guaranteed = row.field === 'guaranteed' ? granted : project.guaranteed;
  // The other field is kept as read: a change of it meanwhile fails this (412) and the caller reads again.
  return build.setProjectQuotas(row.organization_id, row.project_id, [{ kind: row.kind, cap, guaranteed }], force, project.generation);
}

/** A request's journal entry: the request as it is after the change, in `changes.request`. */
const journalOf = (row: RequestRow, action: JournalAction, principal: string) => ({
  organization: row.organization_id,
  project: row.project_id,
  principal,
  action,
  subject: row.id,
  changes: { request: requestOf(row) },
  deltas: [],
});

/** Applies `row` granted at `granted` in this transaction, journaling the approval beside the change; throws a refusal. */
async function apply(context: WriteContext, row: RequestRow, granted: number, by: string, force: boolean): Promise<RequestRow> {
  const approved: RequestRow = { ...row, state: 'approved', granted, decided_by: by, decided_at: context.nowMs };
  const operation = await changeOf(context.tx, row, granted, force);
  // Through the working set, whose flush writes its entries as text: after the change's own entry.
  const entry = journalOf(approved, 'quota-request.approved', context.principal);
  const journal = (ws: WorkingSet) => ws.appendJournal({ ...entry, changes: JSON.stringify(entry.changes), deltas: '[]' });
  const outcome = await decideWithin(context.tx, context.dialect, context.nowMs, context.principal, operation, journal);
  if (outcome.status === 'refused') throw outcome.error;
  return approved;
}

function checkInput(input: QuotaRequestInput): { project: string | null; field: RequestRow['field']; preferred: number } {
  const preferred = checkQuantity('preferred', input.preferred);
  if (input.scope === 'organization') {
    if (input.project !== undefined || input.field !== undefined) throw invalid('scope', 'an organization request names no project or field');
    return { project: null, field: 'quota', preferred };
  }
  if (input.project === undefined || input.field === undefined) throw invalid('scope', 'a project request names its project and field (cap or guaranteed)');
  return { project: input.project, field: input.field, preferred };
}

/** Files a request: applied at once when it is a decrease its requester may make, or the policy approves it; else pending. */
export async function createRequest(context: WriteContext, organization: string, input: QuotaRequestInput, requester: Requester, force: boolean): Promise<RequestRow> {
  const { tx, nowMs } = context;
  const { project, field, preferred } = checkInput(input);
  const base = { organization_id: organization, project_id: project, field, kind: input.kind };
  const current = await currentValue(tx, base);
  if (current === preferred) throw invalid('preferred', `is already the value in force (${preferred})`);
  const policy = await policyOf(tx, input.kind);
  const decrease = current === null || preferred < current;
  const cutPercent = current === null || current === 0 ? 0 : ((current - preferred) * 100) / current;
  if (decrease && policy.decreaseMaxPercent !== null && cutPercent > policy.decreaseMaxPercent && !force) {
    throw new AllotError('decrease-needs-force', `cutting ${input.kind} from ${current} to ${preferred} is more than the ${policy.decreaseMaxPercent} % allowed without force`);
  }
  const open = await openRequest(tx, organization, project, input.kind);
  if (open) throw stillOpen(open);
  const row: RequestRow = {
    ...base,
    id: uuidv7(),
    preferred,
    current_value: current,
    justification: input.justification,
    contact: input.contact,
    state: 'pending',
    granted: null,
    reason: null,
    requested_by: context.principal,
    requested_at: nowMs,
    expires_at: nowMs + policy.expiresAfterSeconds * 1000,
    decided_by: null,
    decided_at: null,
  };
  const by = decrease && requester.mayApply ? context.principal : project === null && (await approvesByPolicy(tx, policy, { organization, kind: input.kind, current, preferred }, nowMs)) ? 'policy' : null;
  if (by !== null) {
    const approved = await apply(context, row, preferred, by, force);
    await insertRequest(tx, approved, false);
    return approved;
  }
  await insertRequest(tx, row, true);
  appendJournal(context, journalOf(row, 'quota-request.created', context.principal));
  return row;
}

/** The request, pending and not past its time (one past it is answered as expired: the sweeper ends it). */
async function pendingRow(context: WriteContext, organization: string, id: string): Promise<RequestRow> {
  const row = await readRequestRow(context.tx, organization, id);
  if (row.state === 'pending' && Number(row.expires_at) <= context.nowMs) throw resolved({ id, state: 'expired' });
  return row;
}

/** Approves a pending request at `granted` (default: preferred). */
export async function approveRequest(context: WriteContext, organization: string, id: string, input: { granted?: number | string; force?: boolean }): Promise<RequestRow> {
  const row = await pendingRow(context, organization, id);
  const granted = input.granted === undefined ? Number(row.preferred) : checkQuantity('granted', input.granted);
  if (!(await leavePending(context.tx, id, { state: 'approved', granted, by: context.principal, atMs: context.nowMs }))) {
    throw resolved(await readRequestRow(context.tx, organization, id));
  }
  return apply(context, row, granted, context.principal, input.force === true);
}

/** Denies, cancels or expires a pending request. */
export async function closeRequest(
  context: WriteContext,
  organization: string,
  id: string,
  state: 'denied' | 'cancelled' | 'expired',
  reason: string | null,
): Promise<RequestRow> {
  const { tx, nowMs, principal } = context;
  if (state !== 'expired') await pendingRow(context, organization, id);
  if (!(await leavePending(tx, id, { state, reason, by: principal, atMs: nowMs }))) throw resolved(await readRequestRow(tx, organization, id));
  const row = await readRequestRow(tx, organization, id);
  appendJournal(context, journalOf(row, `quota-request.${state}`, principal));
  return row;
}
