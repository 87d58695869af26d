/** Quota requests: filed, approved (by a person, by policy, at once), denied, cancelled, expired; and the policies. */
import { pageSize } from '../pages.js';
import type { Core } from '../core.js';
import { AllotError } from '../../domain/errors.js';
import { approveRequest, closeRequest, createRequest, type Requester } from './decide.js';
import { policyOf, putPolicy, type RequestPolicyInput } from './policies.js';
import { duePending, listRequests, openRequest, stillOpen, readRequestRow, requestOf, type QuotaRequest, type QuotaRequestInput, type RequestState } from './requests.js';
import type { WriteOptions } from '../types.js';
import { checkId } from '../validate.js';
import { requireKind } from '../catalog/kinds.js';

const approvalAttemptsMax = 3;
const expiriesPerPass = 100;

export const requestsOf = (core: Core) => ({
  /**
   * Files a request. `mayApply`: the requester's role may set the value (a decrease then applies
   * at once); `force`: a cut past the kind's safety check is asked for anyway.
   */
  async createQuotaRequest(
    organization: string,
    input: QuotaRequestInput,
    options: WriteOptions<QuotaRequest> & { mayApply?: boolean; force?: boolean } = {},
  ): Promise<QuotaRequest> {
    checkId('kind', input.kind);
    const requester: Requester = { principal: options.principal ?? 'system', mayApply: options.mayApply ?? true };
    try {
      return await core.write(options, async (context) => requestOf(await createRequest(context, organization, input, requester, options.force ?? false)), organization);
    } catch (error) {
      // Another request for the same key was filed in the same moment: it is the open one.
      if (!core.store.isUniqueViolation(error)) throw error;
      const open = await core.read((tx) => openRequest(tx, organization, input.project ?? null, input.kind));
      if (!open) throw error;
      throw stillOpen(open);
    }
  },

  async approveQuotaRequest(organization: string, id: string, input: { granted?: number | string; force?: boolean } = {}, options: WriteOptions<QuotaRequest> = {}) {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await core.write(options, async (context) => requestOf(await approveRequest(context, organization, id, input)), organization);
      } catch (error) {
        // A project's other field changed between its read and the change: read again.
        if (error instanceof AllotError && error.code === 'precondition-failed' && attempt < approvalAttemptsMax) continue;
        throw error;
      }
    }
  },

  denyQuotaRequest(organization: string, id: string, reason: string, options: WriteOptions<QuotaRequest> = {}) {
    return core.write(options, async (context) => requestOf(await closeRequest(context, organization, id, 'denied', reason)), organization);
  },

  cancelQuotaRequest(organization: string, id: string, options: WriteOptions<QuotaRequest> = {}) {
    return core.write(options, async (context) => requestOf(await closeRequest(context, organization, id, 'cancelled', null)), organization);
  },

  getQuotaRequest(organization: string, id: string): Promise<QuotaRequest> {
    return core.read(async (tx) => requestOf(await readRequestRow(tx, organization, id)));
  },

  listQuotaRequests(organization: string, query: { state?: RequestState; project?: string; limit?: number; cursor?: string } = {}) {
    const limit = pageSize(query);
    return core.read((tx) => listRequests(tx, organization, { ...query, limit }));
  },

  /** The request once it has left pending, or as it is when `timeoutMs` has passed (a long poll). */
  async waitForQuotaRequest(organization: string, id: string, timeoutMs: number): Promise<QuotaRequest> {
    // A time bound, not a moment of the books: the monotonic clock, not the ledger's.
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const request = await core.read(async (tx) => requestOf(await readRequestRow(tx, organization, id)));
      const left = deadline - performance.now();
      if (request.state !== 'pending' || left <= 0) return request;
      // A change here wakes it at once; one made by another process within a poll.
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          core.listeners.delete(heard);
          resolve();
        };
        const heard = (changed: string) => changed === organization && done();
        const timer = setTimeout(done, Math.min(left, 250));
        core.listeners.add(heard);
      });
    }
  },

  /** Ends pending requests past their time (the sweeper's pass); returns how many. */
  async expireQuotaRequests(): Promise<number> {
    const due = await core.read((tx) => duePending(tx, core.clock.nowMs(), expiriesPerPass));
    let expired = 0;
    for (const row of due) {
      const ended = await core
        .write({ principal: 'system' }, (context) => closeRequest(context, row.organization_id, row.id, 'expired', null), row.organization_id)
        .then(() => true, (error: unknown) => (error instanceof AllotError && error.code === 'quota-request-resolved' ? false : Promise.reject(error)));
      if (ended) expired += 1;
    }
    return expired;
  },

  getRequestPolicy(kind: string) {
    return core.read(async (tx) => {
      await requireKind(tx, kind);
      return policyOf(tx, kind);
    });
  },

  putRequestPolicy(kind: string, input: RequestPolicyInput, options: WriteOptions = {}) {
    return core.write(options, async ({ tx, principal, nowMs }) => {
      await requireKind(tx, kind);
      return putPolicy(tx, kind, input, principal, nowMs);
    });
  },
});
