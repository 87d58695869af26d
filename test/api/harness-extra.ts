// Goal: a few helpers the hold, precondition, idempotency and journal API tests share, on top
// of harness.ts: an app over a ledger with a ManualClock, one-line requests, URL builders, the
// journal read through the API, and a snapshot that also covers pending holds and the journal.
// Method: everything goes through `app.inject` (via harness `send`/`getJson`), never through
// the ledger, except `openClockedApi`, which builds the app exactly as `openApi` does.
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import type { Engine } from '../../src/store/store.js';
import { ManualClock, openTestLedger } from '../support/engines.js';
import {
  adminToken,
  getJson,
  send,
  snapshot,
  walkPages,
  type ApiCase,
  type ApiHarness,
  type ApiResponse,
} from './harness.js';

export const Ki = 1024;
export const Mi = 1024 ** 2;
export const Gi = 1024 ** 3;

/** An id in the shape of the ledger's ids that names nothing. */
export const unknownId = '01900000-0000-7000-8000-000000000000';

export interface ClockedApi extends ApiHarness {
  clock: ManualClock;
}

/** A fresh database, a ledger on a ManualClock (2026-01-01T00:00:00Z), and the app. */
export async function openClockedApi(engine: Engine): Promise<ClockedApi> {
  const clock = new ManualClock();
  const test = await openTestLedger(engine, clock);
  const app = await buildApp({ ledger: test.ledger, adminToken });
  return { app, test, clock };
}

/** The URLs of one organization and project. */
export function urls(organization: string, project: string) {
  const base = `/v1/organizations/${organization}`;
  return {
    quotas: `${base}/quotas`,
    journal: `${base}/journal`,
    allocations: `${base}/projects/${project}/allocations`,
    holds: `${base}/projects/${project}/holds`,
  };
}

/** One request with the admin token; `body` is sent as JSON when given. */
export function call(
  app: FastifyInstance,
  method: HTTPMethods,
  url: string,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<ApiResponse> {
  return send(app, { method, url, ...(body === undefined ? {} : { body }), ...(headers ? { headers } : {}) });
}

/** Setup cases: kinds, organizations with their projects, and quotas. */
export function setupCases(options: {
  kinds: Record<string, Record<string, unknown>>;
  organizations: Record<string, string[]>;
  quotas?: Record<string, { kind: string; quantity: unknown }[]>;
}): ApiCase[] {
  const cases: ApiCase[] = [];
  for (const [kind, body] of Object.entries(options.kinds)) {
    cases.push({ name: `kind ${kind}`, method: 'PUT', url: `/v1/resource-kinds/${kind}`, body, status: 201 });
  }
  for (const [organization, projects] of Object.entries(options.organizations)) {
    cases.push({ name: `org ${organization}`, method: 'PUT', url: `/v1/organizations/${organization}`, body: {}, status: 201 });
    for (const project of projects) {
      cases.push({
        name: `project ${organization}/${project}`,
        method: 'PUT',
        url: `/v1/organizations/${organization}/projects/${project}`,
        body: {},
        status: 201,
      });
    }
  }
  for (const [organization, quotas] of Object.entries(options.quotas ?? {})) {
    cases.push({ name: `quotas of ${organization}`, method: 'PUT', url: `/v1/organizations/${organization}/quotas`, body: { quotas }, status: 200 });
  }
  return cases;
}

export interface Usage {
  committed: number;
  reserved: number;
  held: number;
}

/** A GET quotas case that checks the usage of the listed kinds, and used = committed + reserved + held. */
export function usageCase(
  organization: string,
  expected: Record<string, Partial<Usage> & Record<string, unknown>>,
  name?: string,
): ApiCase {
  return {
    name: name ?? `GET quotas: ${JSON.stringify(expected)}`,
    method: 'GET',
    url: `/v1/organizations/${organization}/quotas`,
    status: 200,
    json: (body, response) => {
      expect(response.headers.etag).toBe(`"${body.generation}"`);
      for (const [kind, usage] of Object.entries(expected)) {
        const row = (body.quotas as any[]).find((quota) => quota.kind === kind);
        expect(row, `quota row of ${kind}`).toBeDefined();
        expect(row.used).toBe(row.committed + row.reserved + row.held);
        expect(row).toMatchObject(usage);
      }
    },
  };
}

export interface JournalEntry {
  revision: number;
  organization: string;
  project: string | null;
  at: string;
  principal: string;
  action: string;
  subject: string | null;
  changes: Record<string, unknown>;
  deltas: { kind: string; committed: number; reserved: number; held: number }[];
}

/** The whole journal of an organization, paged through the API with `after` and `limit`. */
export async function journalOf(app: FastifyInstance, organization: string, limit = 1000): Promise<JournalEntry[]> {
  const entries: JournalEntry[] = [];
  for (let guard = 0; guard < 10_000; guard += 1) {
    const after = entries.at(-1)?.revision ?? 0;
    const page = await getJson(app, `/v1/organizations/${organization}/journal?after=${after}&limit=${limit}`);
    expect(page.items.length).toBeLessThanOrEqual(limit);
    expect(page.lastRevision).toBe(page.items.at(-1)?.revision ?? after);
    if (page.items.length === 0) return entries;
    entries.push(...page.items);
  }
  throw new Error('the journal does not end');
}

/** The revision of the organization's last journal entry (0 when it has none). */
export async function lastRevisionOf(app: FastifyInstance, organization: string): Promise<number> {
  return (await journalOf(app, organization)).at(-1)?.revision ?? 0;
}

/** Per kind, the sum of every entry's deltas: what the counters must hold. */
export function sumOfDeltas(entries: readonly JournalEntry[]): Record<string, Usage> {
  const sums: Record<string, Usage> = {};
  for (const entry of entries) {
    for (const delta of entry.deltas) {
      const sum = (sums[delta.kind] ??= { committed: 0, reserved: 0, held: 0 });
      sum.committed += delta.committed;
      sum.reserved += delta.reserved;
      sum.held += delta.held;
    }
  }
  return sums;
}

/**
 * Everything `snapshot` shows, plus each project's pending holds and each organization's
 * journal: a refused request must leave all of it as it was.
 */
export async function fullSnapshot(app: FastifyInstance): Promise<unknown> {
  const base: any = await snapshot(app);
  const holds: Record<string, unknown[]> = {};
  const journals: Record<string, unknown[]> = {};
  for (const tenant of base.tenants as any[]) {
    const organization = tenant.organization.id as string;
    journals[organization] = await journalOf(app, organization);
    for (const project of tenant.projects as any[]) {
      holds[`${organization}/${project.id}`] = (
        await walkPages(app, `/v1/organizations/${organization}/projects/${project.id}/holds`, 1000)
      ).items;
    }
  }
  return { ...base, holds, journals };
}
