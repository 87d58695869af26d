/**
 * The dashboard's only way to the server: the same /v1 API every client uses, with the
 * signed-in token. Problems (RFC 9457) become ApiErrors carrying their code, so views show
 * the server's own words and decide on the code (a forcible refusal asks to confirm).
 */
import type {
  Allocation,
  Limit,
  Organization,
  Page,
  Project,
  ProjectQuotaSet,
  ProjectQuotaUsage,
  QuotaSet,
  QuotaUsage,
  ResourceKind,
} from '../../src/ledger/types.js';
import type { JournalEntry } from '../../src/ledger/journal/journal.js';
import type { HistorySeries } from '../../src/ledger/history/history.js';
import type { Role } from '../../src/domain/access.js';
import type { Static } from '@sinclair/typebox';
import type * as wire from '../../src/schemas/index.js';

export type {
  Allocation,
  HistorySeries,
  JournalEntry,
  Limit,
  Organization,
  Page,
  Project,
  ProjectQuotaSet,
  ProjectQuotaUsage,
  QuotaSet,
  QuotaUsage,
  ResourceKind,
  Role,
};
export type OrganizationWithQuotas = Organization & { quotas: QuotaUsage[] };
export type Subscription = Static<typeof wire.Subscription>;
export type SubscriptionInput = Static<typeof wire.SubscriptionBody>;
/** A subscription as created: with its signing secret, which no later answer shows. */
export type NewSubscription = Static<typeof wire.NewSubscription>;
export type ThresholdSpec = Static<typeof wire.ThresholdSpec>;
export type Delivery = Subscription['deliveries'][number];
export type QuotaRequest = Static<typeof wire.QuotaRequest>;
export type QuotaRequestInput = Static<typeof wire.QuotaRequestBody>;

export interface WhoAmI {
  principal: string;
  role: Role;
  organization: string | null;
  project: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    /** The problem's code (`quota-below-usage`), or `network` when the server was not reached. */
    readonly code: string,
    message: string,
    readonly fieldErrors: { field: string; message: string }[] = [],
    /** quota-request-open: the id of the request still open for the same kind and scope. */
    readonly openRequest: string | null = null,
  ) {
    super(message);
  }
}

export interface Answer<T> {
  body: T;
  etag: string | null;
}

export class Client {
  /** Called when the server stops accepting the token (revoked or expired): the session ends. */
  onUnauthorized?: () => void;

  constructor(readonly token: string) {}

  async call<T>(
    method: string,
    path: string,
    options: { body?: unknown; ifMatch?: string | null; signal?: AbortSignal } = {},
  ): Promise<Answer<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (options.ifMatch) headers['if-match'] = options.ifMatch;
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: options.signal,
      });
    } catch {
      throw new ApiError(0, 'network', 'The server could not be reached.');
    }
    const text = await response.text();
    const parsed: unknown = text === '' ? null : safeJson(text);
    if (response.status === 401) this.onUnauthorized?.();
    if (!response.ok) throw problemOf(response.status, parsed);
    return { body: parsed as T, etag: response.headers.get('etag') };
  }

  async get<T>(path: string): Promise<T> {
    return (await this.call<T>('GET', path)).body;
  }

  whoami = () => this.get<WhoAmI>('/v1/whoami');
  kinds = () => this.get<{ items: ResourceKind[] }>('/v1/resource-kinds');
  organization = (id: string) => this.get<Organization>(`/v1/organizations/${enc(id)}`);
  organizations = (query: { prefix?: string; cursor?: string; limit: number }) =>
    this.get<Page<OrganizationWithQuotas>>(`/v1/organizations${search({ ...query, include: 'quotas' })}`);
  quotas = (organization: string) => this.call<QuotaSet>('GET', `/v1/organizations/${enc(organization)}/quotas`);
  projects = (organization: string, query: { cursor?: string; limit: number }) =>
    this.get<Page<Project>>(`/v1/organizations/${enc(organization)}/projects${search(query)}`);
  projectQuotas = (organization: string, project: string) =>
    this.call<ProjectQuotaSet>('GET', `/v1/organizations/${enc(organization)}/projects/${enc(project)}/quotas`);
  allocations = (
    organization: string,
    query: { project?: string; resourceKind?: string; resourceId?: string; cursor?: string; limit: number },
  ) => this.get<Page<Allocation>>(`/v1/organizations/${enc(organization)}/allocations${search(query)}`);
  projectAllocations = (
    organization: string,
    project: string,
    query: { resourceKind?: string; resourceId?: string; cursor?: string; limit: number },
  ) => this.get<Page<Allocation>>(`/v1/organizations/${enc(organization)}/projects/${enc(project)}/allocations${search(query)}`);
  limits = (organization: string, query: { project?: string; cursor?: string; limit: number }) =>
    this.get<Page<Limit>>(`/v1/organizations/${enc(organization)}/limits${search(query)}`);
  projectLimits = (organization: string, project: string) =>
    this.get<{ items: Limit[] }>(`/v1/organizations/${enc(organization)}/projects/${enc(project)}/limits`);
  journalTail = (organization: string, count: number) =>
    this.get<{ items: JournalEntry[]; lastRevision: number }>(`/v1/organizations/${enc(organization)}/journal?tail=${count}`);
  history = (organization: string, query: { kind: string; from: string; to: string; step?: number }) =>
    this.get<HistorySeries>(`/v1/organizations/${enc(organization)}/history${search(query)}`);

  subscriptions = (organization: string) => this.get<{ items: Subscription[] }>(`/v1/organizations/${enc(organization)}/subscriptions`);
  createSubscription = (organization: string, body: SubscriptionInput) =>
    this.call<NewSubscription>('POST', `/v1/organizations/${enc(organization)}/subscriptions`, { body });
  deleteSubscription = (organization: string, id: string) =>
    this.call<null>('DELETE', `/v1/organizations/${enc(organization)}/subscriptions/${enc(id)}`);
  resumeSubscription = (organization: string, id: string) =>
    this.call<Subscription>('POST', `/v1/organizations/${enc(organization)}/subscriptions/${enc(id)}/resume`);

  quotaRequests = (organization: string, query: { state?: 'pending'; cursor?: string; limit: number }) =>
    this.get<Page<QuotaRequest>>(`${requestsPath(organization)}${search(query)}`);
  /** With `waitSeconds`, answered once the request leaves pending or when that time is up (a long poll). */
  quotaRequest = async (organization: string, id: string, waitSeconds: number, signal?: AbortSignal) =>
    (await this.call<QuotaRequest>('GET', `${requestsPath(organization)}/${enc(id)}?wait=${waitSeconds}s`, { signal })).body;
  /** `force`: a cut past the kind's safety check is asked for anyway (and applied below usage). */
  createQuotaRequest = (organization: string, body: QuotaRequestInput, force: boolean) =>
    this.call<QuotaRequest>('POST', `${requestsPath(organization)}${force ? '?force=true' : ''}`, { body });
  approveQuotaRequest = (organization: string, id: string, body: { granted?: number | string }) =>
    this.call<QuotaRequest>('POST', `${requestsPath(organization)}/${enc(id)}/approve`, { body });
  denyQuotaRequest = (organization: string, id: string, reason: string) =>
    this.call<QuotaRequest>('POST', `${requestsPath(organization)}/${enc(id)}/deny`, { body: { reason } });
  cancelQuotaRequest = (organization: string, id: string) =>
    this.call<QuotaRequest>('POST', `${requestsPath(organization)}/${enc(id)}/cancel`);

  setQuota(organization: string, kind: string, quantity: number | string | null, ifMatch: string | null, force: boolean) {
    return this.call<QuotaSet>('PUT', `/v1/organizations/${enc(organization)}/quotas${force ? '?force=true' : ''}`, {
      body: { quotas: [{ kind, quantity }] },
      ifMatch,
    });
  }

  setProjectQuota(
    organization: string,
    project: string,
    quota: { kind: string; cap: number | string | null; guaranteed: number | string | null },
    ifMatch: string | null,
    force: boolean,
  ) {
    return this.call<ProjectQuotaSet>(
      'PUT',
      `/v1/organizations/${enc(organization)}/projects/${enc(project)}/quotas${force ? '?force=true' : ''}`,
      { body: { quotas: [quota] }, ifMatch },
    );
  }

  /**
   * Follows an organization's journal as server-sent events. EventSource cannot send an
   * Authorization header, so this reads the stream with fetch. After a drop it reconnects
   * after the last revision seen, backing off (with jitter) from about a second to a minute.
   * allot's own refusal ends it: a 401 (the token was revoked or expired) must not be retried,
   * since every retry counts against the address's failed-authentication budget, which other
   * clients share.
   * Returns a function that stops it.
   */
  watch(
    organization: string,
    after: number,
    onEntry: (entry: JournalEntry) => void,
    onState: (state: 'live' | 'reconnecting') => void,
    onRefused: (error: ApiError) => void,
  ): () => void {
    const controller = new AbortController();
    let last = after;
    let failures = 0;
    const run = async () => {
      while (!controller.signal.aborted) {
        try {
          const response = await fetch(`/v1/organizations/${enc(organization)}/watch?after=${last}`, {
            headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
            signal: controller.signal,
          });
          // Final only when allot itself refuses (a problem document): a 401 must never be
          // retried, and a 403 or 404 will not change. A proxy's 404 during a deploy will.
          const refusal = await refusalOf(response);
          if (refusal) {
            if (refusal.status === 401) this.onUnauthorized?.();
            onRefused(refusal);
            return;
          }
          if (!response.ok || !response.body) throw new Error(`watch answered ${response.status}`);
          onState('live');
          const connectedAt = Date.now();
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let end: number;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const entry = parseEvent(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
              if (entry && entry.revision > last) {
                last = entry.revision;
                onEntry(entry);
              }
            }
          }
          // A stream that stayed up a while was healthy: the next drop starts the backoff over.
          // One a proxy ends at once keeps backing off.
          if (Date.now() - connectedAt > 30_000) failures = 0;
        } catch {
          if (controller.signal.aborted) return;
        }
        onState('reconnecting');
        failures += 1;
        const backoffMs = Math.min(60_000, 1000 * 2 ** Math.min(failures - 1, 6));
        await new Promise((resolve) => setTimeout(resolve, backoffMs * (0.5 + Math.random() / 2)));
      }
    };
    void run();
    return () => controller.abort();
  }
}

/** allot's own final refusal of a stream (401, 403, 404 as a problem document), if it is one. */
async function refusalOf(response: Response): Promise<ApiError | null> {
  if (![401, 403, 404].includes(response.status)) return null;
  if (!(response.headers.get('content-type') ?? '').startsWith('application/problem+json')) return null;
  const body = safeJson(await response.text()) as { type?: unknown } | null;
  if (typeof body?.type !== 'string' || !body.type.startsWith('/problems/')) return null;
  return problemOf(response.status, body);
}

/** One SSE frame; only `journal` events carry an entry (comments are heartbeats). */
function parseEvent(frame: string): JournalEntry | null {
  let event = 'message';
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (event !== 'journal' || data.length === 0) return null;
  return safeJson(data.join('\n')) as JournalEntry | null;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function problemOf(status: number, body: unknown): ApiError {
  const problem = (body ?? {}) as {
    type?: string;
    title?: string;
    detail?: string;
    errors?: { field: string; message: string }[];
    openRequest?: unknown;
  };
  const code = typeof problem.type === 'string' ? problem.type.replace(/^.*\/problems\//, '') : `http-${status}`;
  const message = problem.detail ?? problem.title ?? `The server answered ${status}.`;
  const openRequest = typeof problem.openRequest === 'string' ? problem.openRequest : null;
  return new ApiError(status, code, message, Array.isArray(problem.errors) ? problem.errors : [], openRequest);
}

const enc = encodeURIComponent;
const requestsPath = (organization: string) => `/v1/organizations/${enc(organization)}/quota-requests`;

function search(query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}
