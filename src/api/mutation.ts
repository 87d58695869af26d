/**
 * Answers a mutating request, honouring `Idempotency-Key`: the first request with a key runs
 * and its response is stored (in the decision's own transaction when it succeeds, right after
 * the rollback when it is refused); a retry with the same key and the same request gets that
 * response again, status and body, denials included; the same key with a different request
 * gets 422; a retry while the first still runs waits for its outcome. Keys are per principal.
 */
import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  claimReleaseRetryMs,
  idempotencyClaimStaleMs,
  idempotencyKeyLengthMax,
  idempotencyPollIntervalMs,
  idempotencyWaitMsMax,
} from '../domain/constants.js';
import { AllotError, invalid } from '../domain/errors.js';
import type { StoredResponse } from '../ledger/idempotency/keys.js';
import type { Ledger } from '../ledger/ledger.js';
import type { WriteOptions } from '../ledger/types.js';
import { assert } from '../domain/assert.js';
import type { Decision, OperationOutcome } from '../ledger/engine/engine.js';
import type { Operation } from '../ledger/engine/operations.js';
import { principalOf } from './auth.js';
import { problemContentType, problemOf } from './problems.js';

export type HttpOutcome = StoredResponse;

/** `?dryRun=true` on a mutating route: decide, answer, write nothing (header Allot-Dry-Run). */
export function dryRunOf(request: FastifyRequest): boolean {
  const value = (request.query as { dryRun?: string } | undefined)?.dryRun;
  return value === 'true';
}

/** The answer of one operation: its success outcome, or its refusal as a problem. */
export function answerOf<T>(request: FastifyRequest, toOutcome: (result: T) => HttpOutcome) {
  return (outcome: OperationOutcome): HttpOutcome => {
    if (outcome.status === 'applied') return toOutcome(outcome.value as T);
    assert(outcome.status === 'refused', 'a lone operation is applied or refused');
    const { status, body } = problemOf(outcome.error, request.url);
    return { status, headers: { 'content-type': problemContentType }, body };
  };
}

/**
 * Answers a decision (one operation, or a batch) through the group commit. With an
 * `Idempotency-Key`, the group itself looks the key up and stores the answer in the decision's
 * transaction, denials included; a retry gets it again (`Idempotent-Replayed: true`), the same
 * key with another request 422, and a retry while the first runs in another process waits for
 * it. A dry run decides and answers without writing, and consumes no key.
 */
export async function decide(
  ledger: Ledger,
  request: FastifyRequest,
  reply: FastifyReply,
  decision: Omit<Decision, 'principal' | 'dryRun' | 'idempotency'>,
  answer: (outcomes: readonly OperationOutcome[]) => HttpOutcome,
): Promise<FastifyReply> {
  const principal = principalOf(request);
  const dryRun = dryRunOf(request);
  const header = request.headers['idempotency-key'];
  // A dry run's key is checked and looked up as the real request's would be (a malformed key is
  // a 400, a reused one a 422, a used one replays), but never stored.
  const key = header === undefined ? undefined : checkKey(header);
  const idempotency = key === undefined ? undefined : { key, requestHash: hashOf(request), respond: answer };
  if (dryRun) reply.header('allot-dry-run', 'true');
  const deadline = ledger.clock.nowMs() + idempotencyWaitMsMax;
  for (;;) {
    const outcome = await ledger.decide({ ...decision, principal, dryRun, ...(idempotency ? { idempotency } : {}) });
    switch (outcome.kind) {
      case 'decided':
        return send(reply, answer(outcome.outcomes));
      case 'replayed':
        reply.header('idempotent-replayed', 'true');
        return send(reply, outcome.response);
      case 'reused':
        throw new AllotError(
          'idempotency-key-reused',
          'this idempotency key was first used for a different request (method, path or body)',
        );
      case 'pending':
        if (ledger.clock.nowMs() >= deadline) {
          throw new AllotError('request-in-progress', 'the first request with this key is still running');
        }
        await new Promise((resolve) => setTimeout(resolve, idempotencyPollIntervalMs));
    }
  }
}

const keyPattern = /^[\u0021-\u007e]+$/;

export async function respond<T>(
  ledger: Ledger,
  request: FastifyRequest,
  reply: FastifyReply,
  run: (options: WriteOptions<T>) => Promise<T>,
  toOutcome: (result: T) => HttpOutcome,
): Promise<FastifyReply> {
  const principal = principalOf(request);
  const header = request.headers['idempotency-key'];
  if (header === undefined) return send(reply, toOutcome(await run({ principal })));
  const key = checkKey(header);
  const requestHash = hashOf(request);
  const deadline = ledger.clock.nowMs() + idempotencyWaitMsMax;
  for (;;) {
    const claim = await ledger.claimKey(principal, key, requestHash);
    switch (claim.kind) {
      case 'done':
        reply.header('idempotent-replayed', 'true');
        return send(reply, claim.response);
      case 'reused':
        throw new AllotError(
          'idempotency-key-reused',
          'this idempotency key was first used for a different request (method, path or body)',
        );
      case 'pending':
        if (ledger.clock.nowMs() >= deadline) {
          throw new AllotError('request-in-progress', 'the first request with this key is still running');
        }
        await new Promise((resolve) => setTimeout(resolve, idempotencyPollIntervalMs));
        continue;
      case 'claimed':
        return send(reply, await runClaimed(ledger, request, run, toOutcome, principal, key, claim.token));
    }
  }
}

async function runClaimed<T>(
  ledger: Ledger,
  request: FastifyRequest,
  run: (options: WriteOptions<T>) => Promise<T>,
  toOutcome: (result: T) => HttpOutcome,
  principal: string,
  key: string,
  token: string,
): Promise<HttpOutcome> {
  const recordKey = ledger.keyRecorder(principal, key, token);
  try {
    const result = await run({
      principal,
      record: (tx, value) => recordKey(tx, toOutcome(value)),
    });
    return toOutcome(result);
  } catch (error) {
    // Not an answer to keep (a failure, an unavailable database): the claim is given up so a
    // retry runs afresh — or, had the change committed after all, finds its stored response.
    if (!(error instanceof AllotError) || error.code === 'request-in-progress' || error.status >= 500) {
      await releaseClaim(ledger, principal, key, token);
      throw error;
    }
    // A refusal wrote nothing; its answer is stored now so a retry gets the same one.
    const { status, body } = problemOf(error, request.url);
    const outcome = { status, headers: { 'content-type': problemContentType }, body };
    await ledger.completeKey(principal, key, token, outcome);
    return outcome;
  }
}

/**
 * Gives a claim up. With the database away (the failure was most likely its loss), it tries
 * again in the background until the database answers, for as long as the claim would hold its
 * key: a keyed retry after a failover then runs at once instead of waiting for the claim to go
 * stale. Only a pending claim with this token is removed, so a change that did commit keeps
 * its stored response.
 */
async function releaseClaim(ledger: Ledger, principal: string, key: string, token: string): Promise<void> {
  const giveUpAt = ledger.clock.nowMs() + idempotencyClaimStaleMs;
  const attempt = async (): Promise<void> => {
    try {
      await ledger.abandonKey(principal, key, token);
    } catch {
      if (ledger.clock.nowMs() >= giveUpAt) return;
      setTimeout(() => void attempt(), claimReleaseRetryMs).unref();
    }
  };
  await attempt();
}

function checkKey(header: string | string[]): string {
  const key = Array.isArray(header) ? header[0] : header;
  if (
    key === undefined ||
    Array.isArray(header) && header.length > 1 ||
    key.length > idempotencyKeyLengthMax ||
    !keyPattern.test(key)
  ) {
    throw invalid('Idempotency-Key', `must be 1 to ${idempotencyKeyLengthMax} visible ASCII characters`);
  }
  return key;
}

/**
 * What makes two requests "the same": method, path with query, If-Match, and the parsed body
 * (as sent: the same members in another order make another request).
 */
function hashOf(request: FastifyRequest): string {
  const ifMatch = request.headers['if-match'] ?? null;
  return createHash('sha256')
    .update(JSON.stringify([request.method, withoutDryRun(request.url), ifMatch, request.body ?? null]))
    .digest('hex');
}

/** The URL as the real request sends it: a dry run is the same request, asked without effect. */
function withoutDryRun(url: string): string {
  const query = url.indexOf('?');
  if (query < 0) return url;
  const kept = url.slice(query + 1).split('&').filter((part) => !/^dryRun(=|$)/.test(part));
  return kept.length > 0 ? `${url.slice(0, query)}?${kept.join('&')}` : url.slice(0, query);
}

function send(reply: FastifyReply, outcome: HttpOutcome): FastifyReply {
  for (const [name, value] of Object.entries(outcome.headers)) reply.header(name, value);
  reply.code(outcome.status);
  return outcome.body === undefined ? reply.send() : reply.send(outcome.body);
}

/** Answers one operation through the group commit (see `decide`). */
export function decideOne<T>(
  ledger: Ledger,
  request: FastifyRequest,
  reply: FastifyReply,
  operation: Operation,
  toOutcome: (result: T) => HttpOutcome,
): Promise<FastifyReply> {
  const answer = answerOf(request, toOutcome);
  return decide(ledger, request, reply, { operations: [operation], mode: 'independent' }, (outcomes) => answer(outcomes[0]!));
}
