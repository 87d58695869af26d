/**
 * The load: concurrent clients, each in a loop of random mutating operations (batches of
 * creates among them) on the live servers until the load ends. Every mutating request
 * carries an idempotency key. A refused or reset connection, a cut-off answer, a timeout or a 5xx is an unknown outcome: the client
 * sends the same request with the same key again (to another server if it can) until it gets
 * an answer. An operation that waits long (its first request died with a killed server, so
 * its key stays claimed until the server's stale-claim timeout) is parked: it goes on in the
 * background, its allocation or hold stays busy, and the client starts another operation.
 */
import { isDeepStrictEqual } from 'node:util';
import { applyAnswer, type Answer } from './answers.js';
import { ConnectionError, httpRequest, problemType } from './http.js';
import type { Entity, HttpCall, Line, Model, Op, QuotaChange, Stats, Violations } from './model.js';
import type { Random } from './random.js';
import { Random as Rng, sleep } from './random.js';
import type { ServerPool } from './servers.js';
import { kinds, organizations, quotaMax, quotaMin } from './tenancy.js';

export interface LoadContext {
  pool: ServerPool;
  adminToken: string;
  runId: string;
  seed: string;
  model: Model;
  stats: Stats;
  violations: Violations;
  /** No new operation starts after this. */
  loadEndsAt: number;
  /** Operations still without an answer give up at this moment (a while after the load). */
  giveUpAt: number;
  /** Every operation still running, parked ones included. */
  tasks: Set<Promise<void>>;
}

/** A request waits at most this long for an answer (a retry waits up to 10 s server-side). */
const requestTimeoutMs = 15_000;
/** An operation without an answer after this long is parked. */
const parkAfterMs = 3_000;
const parkedPerClientMax = 4;
/** Share of answered operations sent again with the same key, to check the replay. */
const replayProbability = 0.05;

const weights = {
  'create-allocation': 22,
  'create-hold': 20,
  replace: 12,
  delete: 14,
  confirm: 14,
  release: 6,
  'set-quota': 5,
  batch: 8,
} as const;

/** A batch holds this many creates at most: enough to cross a quota inside one. */
const batchCreatesMax = 4;

export type Outcome =
  | { type: 'answer'; answer: Answer & { replayed: boolean }; attempts: number; receivedAt: number }
  | { type: 'unanswered'; attempts: number };

/** Sends `call` until a server answers it (not with 5xx or request-in-progress) or time is up. */
export async function execute(context: LoadContext, random: Random, call: HttpCall): Promise<Outcome> {
  const { pool, stats } = context;
  let attempts = 0;
  let waits = 0;
  let avoid: string | undefined;
  for (;;) {
    const now = Date.now();
    if (now >= context.giveUpAt) return { type: 'unanswered', attempts };
    const url = pool.pick(random, avoid);
    if (url === undefined) {
      await sleep(random.int(50, 150));
      continue;
    }
    attempts += 1;
    stats.attempts += 1;
    let answer: Answer & { replayed: boolean };
    try {
      answer = await httpRequest(url, call.method, call.path, {
        token: context.adminToken,
        body: call.body,
        idempotencyKey: call.key,
        timeoutMs: Math.min(requestTimeoutMs, context.giveUpAt - now),
      });
    } catch (error) {
      if (!(error instanceof ConnectionError)) throw error;
      stats.connectionErrors += 1;
      avoid = url;
      await sleep(random.int(20, 150));
      continue;
    }
    if (answer.status >= 500) {
      stats.serverErrors += 1;
      avoid = url;
      await sleep(random.int(100, 300));
      continue;
    }
    if (answer.status === 409 && problemType(answer.body) === '/problems/request-in-progress') {
      // The first request with this key is still claimed (its server may have died with it).
      stats.inProgress += 1;
      waits += 1;
      await sleep(Math.min(random.int(250, Math.min(4_000, 250 * 2 ** waits)), context.giveUpAt - Date.now()));
      continue;
    }
    return { type: 'answer', answer, attempts, receivedAt: Date.now() };
  }
}

/** A read, retried like a write until some server answers it. */
async function read(context: LoadContext, random: Random, path: string): Promise<Answer | undefined> {
  let avoid: string | undefined;
  while (Date.now() < context.giveUpAt) {
    const url = context.pool.pick(random, avoid);
    if (url === undefined) {
      await sleep(random.int(50, 150));
      continue;
    }
    try {
      const answer = await httpRequest(url, 'GET', path, {
        token: context.adminToken,
        timeoutMs: Math.min(requestTimeoutMs, context.giveUpAt - Date.now()),
      });
      if (answer.status < 500) return answer;
    } catch (error) {
      if (!(error instanceof ConnectionError)) throw error;
    }
    avoid = url;
    await sleep(random.int(50, 200));
  }
  return undefined;
}

/** Runs the clients until the load ends; operations still running stay in `context.tasks`. */
export async function runLoad(context: LoadContext, clients: number): Promise<void> {
  await Promise.all(Array.from({ length: clients }, (_, index) => runClient(context, index)));
}

async function runClient(context: LoadContext, index: number): Promise<void> {
  const random = new Rng(`${context.seed}/client-${index}`);
  const parked = new Set<Promise<void>>();
  const waitFor = async (task: Promise<unknown>, ms: number) => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([task, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms))))]);
    clearTimeout(timer);
  };
  for (let n = 0; Date.now() < context.loadEndsAt; n += 1) {
    while (parked.size >= parkedPerClientMax && Date.now() < context.loadEndsAt) {
      await waitFor(Promise.race(parked), context.loadEndsAt - Date.now());
    }
    if (Date.now() >= context.loadEndsAt) break;
    const task = perform(context, random, `${context.runId}-${index}-${n}`).catch((error: unknown) => {
      context.violations.add('harness', `client ${index}: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    });
    context.tasks.add(task);
    parked.add(task);
    void task.finally(() => {
      context.tasks.delete(task);
      parked.delete(task);
    });
    await waitFor(task, Math.min(parkAfterMs, context.loadEndsAt - Date.now()));
  }
}

async function perform(context: LoadContext, random: Random, name: string): Promise<void> {
  const { model, stats } = context;
  const op = await plan(context, random, name);
  if (op === undefined) return;
  stats.operations += 1;
  const outcome = await execute(context, random, op.call);
  if (outcome.attempts > 1) stats.retried += 1;
  if (outcome.type === 'unanswered') {
    stats.unresolved += 1;
    model.unanswered.push(op);
    if (op.entity) model.abandon(op.entity);
    return;
  }
  const verdict = applyAnswer(context, op, outcome.answer, 'client', outcome.receivedAt);
  if (verdict !== 'unexpected') stats.count(op.kind, verdict);
  if (random.chance(replayProbability) && Date.now() < context.loadEndsAt) {
    await checkReplay(context, random, op, outcome.answer);
  }
  if (op.entity) op.entity.busy = false;
}

/** Sends an answered request again with its key: the same answer must come back, replayed. */
async function checkReplay(context: LoadContext, random: Random, op: Op, first: Answer): Promise<void> {
  const again = await execute(context, random, op.call);
  if (again.type === 'unanswered') return;
  context.stats.replaysChecked += 1;
  const { answer } = again;
  if (answer.status !== first.status || !isDeepStrictEqual(answer.body, first.body) || !answer.replayed) {
    context.violations.add(
      'idempotent-replay',
      `${op.kind} ${op.call.method} ${op.call.path} key ${op.call.key}: first ${first.status} ` +
        `${JSON.stringify(first.body ?? null).slice(0, 300)}, again ${answer.status} (replayed: ${answer.replayed}) ` +
        `${JSON.stringify(answer.body ?? null).slice(0, 300)}`,
    );
  }
}

interface LinesRequest {
  body: Record<string, unknown>[];
  expected: Line[];
}

const gib = 1024 ** 3;

/** 1 to 4 kinds with small quantities (disk in binary suffixes); omitted fields are 0. */
function randomLines(random: Random): LinesRequest {
  const chance = { gpus: 0.7, cpu: 0.6, ips: 0.3, disk: 0.3 } as const;
  let chosen = kinds.filter((kind) => random.chance(chance[kind.name as keyof typeof chance] ?? 0.5));
  if (chosen.length === 0) chosen = [kinds[0]!];
  const body: Record<string, unknown>[] = [];
  const expected: Line[] = [];
  for (const kind of random.sample(chosen, chosen.length)) {
    let committed: number;
    let reserved: number;
    const line: Record<string, unknown> = { kind: kind.name };
    if (kind.name === 'disk') {
      const size = random.int(1, 64);
      committed = size * gib;
      line.committed = `${size}Gi`;
      reserved = 0;
    } else {
      const ceiling = kind.name === 'gpus' ? 6 : kind.name === 'cpu' ? 8 : 2;
      committed = random.int(0, ceiling);
      reserved = random.int(0, Math.ceil(ceiling / 2));
      if (committed > 0 || random.chance(0.5)) line.committed = committed;
      if (reserved > 0 || random.chance(0.5)) line.reserved = reserved;
    }
    body.push(line);
    expected.push({ kind: kind.name, committed, reserved });
  }
  return { body, expected };
}

const collection = (organization: string, project: string, what: 'allocations' | 'holds') =>
  `/v1/organizations/${organization}/projects/${project}/${what}`;

async function plan(context: LoadContext, random: Random, name: string): Promise<Op | undefined> {
  const { model } = context;
  const key = `chaos-${name}`;
  const now = Date.now();
  let kind: Op['kind'] = random.weighted(weights);
  let entity: Entity | undefined;
  if (kind === 'replace' || kind === 'delete') {
    entity = model.takeLive(random);
    if (entity === undefined) kind = 'create-allocation';
  } else if (kind === 'confirm' || kind === 'release') {
    entity = model.takePending(random, now);
    if (entity === undefined) kind = 'create-hold';
  }
  const organization = random.pick(organizations);
  const base = { firstSentAt: now, organization: organization.id, project: random.pick(organization.projects) };

  switch (kind) {
    case 'create-allocation':
    case 'create-hold':
      return createOp(random, base, kind, name, key);
    case 'batch': {
      // Creates in several projects of one organization, sent as one request.
      const parts = Array.from({ length: random.int(2, batchCreatesMax) }, (_, i) =>
        createOp(random, { ...base, project: random.pick(organization.projects) }, random.chance(0.5) ? 'create-allocation' : 'create-hold', `${name}-${i}`, `${key}-${i}`),
      );
      const mode = random.chance(0.5) ? 'atomic' : 'independent';
      const operations = parts.map((part) => ({
        op: part.kind === 'create-hold' ? 'hold.create' : 'allocation.create',
        project: part.project,
        body: part.call.body,
      }));
      return {
        ...base,
        kind,
        parts,
        mode,
        call: { method: 'POST', path: `/v1/organizations/${base.organization}/batch`, body: { mode, operations }, key },
      };
    }
    case 'replace': {
      const target = entity!;
      const resource = random.chance(0.2) ? { kind: target.resource.kind, id: `chaos-${name}` } : target.resource;
      const lines = randomLines(random);
      return {
        ...base,
        kind,
        organization: target.organization,
        project: target.project,
        entity: target,
        resource,
        lines: lines.expected,
        call: {
          method: 'PUT',
          path: `${collection(target.organization, target.project, 'allocations')}/${target.id}`,
          body: { resource, allocations: lines.body },
          key,
        },
      };
    }
    case 'delete': {
      const target = entity!;
      return {
        ...base,
        kind,
        organization: target.organization,
        project: target.project,
        entity: target,
        call: { method: 'DELETE', path: `${collection(target.organization, target.project, 'allocations')}/${target.id}`, key },
      };
    }
    case 'confirm':
    case 'release': {
      const target = entity!;
      const path = `${collection(target.organization, target.project, 'holds')}/${target.id}/${kind}`;
      let lines: Line[] | null = null;
      let body: unknown;
      if (kind === 'confirm' && random.chance(0.5)) {
        // Confirm less: per kind at most what is held, some kinds dropped (freed).
        lines = target.lines
          .filter(() => random.chance(0.75))
          .map((line) => {
            const total = random.int(0, line.committed + line.reserved);
            const committed = random.int(0, total);
            return { kind: line.kind, committed, reserved: total - committed };
          });
        if (lines.length === 0) lines = [{ ...target.lines[0]! }];
        body = { allocations: lines };
      } else if (kind === 'confirm' && random.chance(0.5)) {
        body = {};
      }
      return {
        ...base,
        kind,
        organization: target.organization,
        project: target.project,
        entity: target,
        lines,
        call: { method: 'POST', path, ...(body === undefined ? {} : { body }), key },
      };
    }
    case 'set-quota': {
      // Never below usage as last read, never forced: a rise in between gets quota-below-usage.
      const read_ = await read(context, random, `/v1/organizations/${base.organization}/quotas`);
      if (read_ === undefined || read_.status !== 200) return undefined;
      const rows = (read_.body as { quotas?: { kind: string; used: number }[] }).quotas ?? [];
      const changes: QuotaChange[] = random
        .sample(kinds.filter((k) => k.quota), random.int(1, 2))
        .map((kindSpec) => {
          const used = rows.find((row) => row.kind === kindSpec.name)?.used ?? 0;
          if (kindSpec.default !== null && kindSpec.default > 0 && random.chance(0.3)) {
            return { kind: kindSpec.name, quantity: null };
          }
          return { kind: kindSpec.name, quantity: random.int(Math.max(quotaMin, used), Math.max(quotaMax, used)) };
        });
      return {
        ...base,
        firstSentAt: Date.now(),
        kind,
        quotas: changes,
        call: { method: 'PUT', path: `/v1/organizations/${base.organization}/quotas`, body: { quotas: changes }, key },
      };
    }
  }
}

/** A create of an allocation or a hold: its request, and what the client expects of it. */
function createOp(
  random: Random,
  base: Pick<Op, 'firstSentAt' | 'organization' | 'project'>,
  kind: 'create-allocation' | 'create-hold',
  name: string,
  key: string,
): Op {
  const resource = { kind: random.pick(['server', 'volume']), id: `chaos-${name}` };
  const lines = randomLines(random);
  const hold = kind === 'create-hold';
  const ttlSeconds = random.int(1, 3);
  return {
    ...base,
    kind,
    resource,
    lines: lines.expected,
    ...(hold ? { ttlSeconds } : {}),
    call: {
      method: 'POST',
      path: collection(base.organization, base.project, hold ? 'holds' : 'allocations'),
      body: { resource, allocations: lines.body, ...(hold ? { ttlSeconds } : {}) },
      key,
    },
  };
}
