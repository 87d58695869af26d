// Goal: one small harness for the HTTP API tests, so every file drives the app the same way.
// Method: a typed `ApiCase` table runner over `app.inject` (no listening socket), problem
// document assertions, and a snapshot of everything a refused request must leave unchanged.
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { expect } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { errorCodes, type ErrorCode } from '../../src/domain/errors.js';
import type { Engine } from '../../src/store/store.js';
import { openTestLedger, type TestLedger } from '../support/engines.js';
import { validatorOf } from '../support/openapi-validator.js';

export const adminToken = 'test-token';
export const auth: Record<string, string> = { authorization: `Bearer ${adminToken}` };

/** A value, or a function computing it when the case runs (for ids learned by earlier cases). */
export type Lazy<T> = T | (() => T);

export interface ApiCase {
  name: string;
  method: HTTPMethods;
  url: Lazy<string>;
  /** Sent as JSON (`content-type: application/json`). */
  body?: Lazy<unknown>;
  /** Sent verbatim; give the content type in `headers`. */
  rawBody?: string;
  /** Added to (or, for `authorization`, replacing) the admin token header. */
  headers?: Record<string, string>;
  /** Send no `authorization` header at all. */
  noAuth?: boolean;
  status: number;
  /** The expected problem code, for error answers: checks content type, type and status. */
  problem?: ErrorCode;
  json?: (body: any, response: ApiResponse) => void;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
  json: any;
}

export interface ApiHarness {
  app: FastifyInstance;
  test: TestLedger;
}

/** A fresh database, ledger and app for one describe block. */
export async function openApi(engine: Engine): Promise<ApiHarness> {
  const test = await openTestLedger(engine);
  const app = await buildApp({ ledger: test.ledger, adminToken });
  return { app, test };
}

export async function closeApi(api: ApiHarness | undefined): Promise<void> {
  if (!api) return;
  await api.app.close();
  await api.test.close();
}

const resolve = <T>(value: Lazy<T>): T =>
  typeof value === 'function' ? (value as () => T)() : value;

export async function send(
  app: FastifyInstance,
  request: Omit<ApiCase, 'name' | 'status'>,
): Promise<ApiResponse> {
  const headers: Record<string, string> = request.noAuth ? {} : { ...auth };
  Object.assign(headers, request.headers ?? {});
  let payload: string | undefined;
  if (request.rawBody !== undefined) {
    payload = request.rawBody;
  } else if (request.body !== undefined) {
    payload = JSON.stringify(resolve(request.body));
    headers['content-type'] ??= 'application/json';
  }
  const response = await app.inject({
    method: request.method,
    url: resolve(request.url),
    headers,
    ...(payload === undefined ? {} : { payload }),
  });
  const broken = validatorOf(app).check(request.method, resolve(request.url), {
    status: response.statusCode,
    headers: response.headers,
    text: response.body,
  });
  expect(broken, 'the answer as the OpenAPI document declares it').toEqual([]);
  let json: unknown;
  try {
    json = response.body ? JSON.parse(response.body) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.statusCode, headers: response.headers, text: response.body, json };
}

/** Sends one case and checks its status, problem document and `json` expectations. */
export async function runCase(app: FastifyInstance, apiCase: ApiCase): Promise<ApiResponse> {
  const response = await send(app, apiCase);
  expect(response.status, `${apiCase.name}: ${response.text.slice(0, 500)}`).toBe(apiCase.status);
  if (apiCase.problem) expectProblem(response, apiCase.problem);
  apiCase.json?.(response.json, response);
  return response;
}

/** An RFC 9457 problem document of the given code. */
export function expectProblem(response: ApiResponse, code: ErrorCode): void {
  expect(response.status).toBe(errorCodes[code].status);
  expect(String(response.headers['content-type'])).toMatch(/^application\/problem\+json(;|$)/);
  expect(response.json).toMatchObject({ status: errorCodes[code].status, title: errorCodes[code].title });
  expect(typeof response.json.type).toBe('string');
  expect(response.json.type.endsWith(`/${code}`), `type ${response.json.type}`).toBe(true);
  expect(typeof response.json.detail).toBe('string');
}

/** The `errors` array of an invalid-request problem names `field` (as a field, or quoted in a message). */
export function expectFieldError(body: any, field: string): void {
  expect(Array.isArray(body?.errors), `errors array in ${JSON.stringify(body)}`).toBe(true);
  const named = (body.errors as { field: string; message: string }[]).some(
    (error) =>
      typeof error.field === 'string' &&
      typeof error.message === 'string' &&
      (error.field === field || error.message.includes(`"${field}"`)),
  );
  expect(named, `no error names "${field}" in ${JSON.stringify(body.errors)}`).toBe(true);
}

/** GET with the admin token; fails the test unless it answers 200. */
export async function getJson(app: FastifyInstance, url: string): Promise<any> {
  const response = await send(app, { method: 'GET', url });
  expect(response.status, `GET ${url}: ${response.text.slice(0, 300)}`).toBe(200);
  return response.json;
}

/** Walks a paged list with `limit`, returning every item and the pages' sizes. */
export async function walkPages(
  app: FastifyInstance,
  url: string,
  limit: number,
): Promise<{ items: any[]; pages: number[] }> {
  const items: any[] = [];
  const pages: number[] = [];
  const separator = url.includes('?') ? '&' : '?';
  let cursor: string | null = null;
  for (let guard = 0; guard < 1000; guard += 1) {
    const page: any = await getJson(
      app,
      `${url}${separator}limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
    );
    expect(page.items.length).toBeLessThanOrEqual(limit);
    items.push(...page.items);
    pages.push(page.items.length);
    cursor = page.nextCursor;
    if (cursor === null) return { items, pages };
    expect(typeof cursor).toBe('string');
  }
  throw new Error(`${url}: pagination does not end`);
}

/** The quotas of one organization, keyed by kind. */
export async function quotasOf(app: FastifyInstance, organization: string): Promise<Record<string, any>> {
  const body = await getJson(app, `/v1/organizations/${organization}/quotas`);
  return Object.fromEntries((body.quotas as any[]).map((quota) => [quota.kind, quota]));
}

/**
 * Everything the API shows: kinds, organizations, their projects and quotas, and every live
 * allocation. A refused request must leave this exactly as it was.
 */
export async function snapshot(app: FastifyInstance): Promise<unknown> {
  const kinds = await getJson(app, '/v1/resource-kinds');
  const organizations = (await walkPages(app, '/v1/organizations', 1000)).items;
  const tenants = [];
  for (const organization of organizations) {
    const projects = (await walkPages(app, `/v1/organizations/${organization.id}/projects`, 1000)).items;
    const allocations: Record<string, unknown[]> = {};
    for (const project of projects) {
      allocations[project.id] = (
        await walkPages(app, `/v1/organizations/${organization.id}/projects/${project.id}/allocations`, 1000)
      ).items;
    }
    tenants.push({
      organization,
      projects,
      quotas: await getJson(app, `/v1/organizations/${organization.id}/quotas`),
      allocations,
    });
  }
  return { kinds, tenants };
}

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
