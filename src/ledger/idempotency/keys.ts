/**
 * Idempotency keys. A request with a key first claims it (its own small transaction); the
 * request's decision then stores its response in the *same* transaction as the change, so a
 * crash can never leave a change without its recorded response (a retry would redo it) or a
 * response without its change. A denial changes nothing, so its response is stored after the
 * rollback. A claim whose request died is taken over by a retry once it is stale; the
 * original, should it still be running, then fails to store its response and rolls back.
 */
import { randomUUID } from 'node:crypto';
import { idempotencyClaimStaleMs, idempotencyRetentionMs } from '../../domain/constants.js';
import { AllotError } from '../../domain/errors.js';
import type { Executor, Store } from '../../store/store.js';

export interface StoredResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export type Claim =
  | { kind: 'claimed'; token: string }
  | { kind: 'done'; response: StoredResponse }
  | { kind: 'reused' }
  | { kind: 'pending' };

interface KeyRow {
  request_hash: string;
  claim_token: string;
  state: 'pending' | 'done';
  status: number | null;
  headers: string | null;
  body: string | null;
  claimed_at: number;
  created_at: number;
}

export async function claimKey(
  store: Store,
  principal: string,
  key: string,
  requestHash: string,
  nowMs: number,
): Promise<Claim> {
  return store.transaction(async (tx) => {
    const token = randomUUID();
    let row: KeyRow | undefined;
    // The row met by the insert may be gone by the time it is locked (its failed request gave
    // the claim up meanwhile): then the insert is tried again, and now it takes the key.
    for (let attempt = 0; row === undefined; attempt += 1) {
      const inserted = await tx.run(
        `INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, claim_token, state,
          claimed_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)
          ON CONFLICT (principal, idempotency_key) DO NOTHING`,
        [principal, key, requestHash, token, nowMs, nowMs],
      );
      if (inserted === 1) return { kind: 'claimed', token };
      row = await tx.get<KeyRow>(
        `SELECT * FROM idempotency_keys WHERE principal = ? AND idempotency_key = ?${store.dialect.lockRowsSuffix}`,
        [principal, key],
      );
      if (row === undefined && attempt >= 2) return { kind: 'pending' };
    }
    // A key past its retention is forgotten: this request starts afresh under it.
    const expired = row.created_at <= nowMs - idempotencyRetentionMs;
    const abandoned = row.state === 'pending' && row.claimed_at <= nowMs - idempotencyClaimStaleMs;
    if (expired || (abandoned && row.request_hash === requestHash)) {
      await tx.run(
        `UPDATE idempotency_keys SET request_hash = ?, claim_token = ?, state = 'pending',
          status = NULL, headers = NULL, body = NULL, claimed_at = ?, created_at = ?
          WHERE principal = ? AND idempotency_key = ?`,
        [requestHash, token, nowMs, expired ? nowMs : row.created_at, principal, key],
      );
      return { kind: 'claimed', token };
    }
    if (row.request_hash !== requestHash) return { kind: 'reused' };
    if (row.state === 'pending') return { kind: 'pending' };
    return {
      kind: 'done',
      response: {
        status: row.status!,
        headers: JSON.parse(row.headers ?? '{}') as Record<string, string>,
        body: row.body === null ? undefined : (JSON.parse(row.body) as unknown),
      },
    };
  });
}

/** Stores the response of a claimed key inside `tx`; fails if the claim was taken over. */
export async function completeKey(
  tx: Executor,
  principal: string,
  key: string,
  token: string,
  response: StoredResponse,
): Promise<void> {
  const updated = await tx.run(
    `UPDATE idempotency_keys SET state = 'done', status = ?, headers = ?, body = ?
      WHERE principal = ? AND idempotency_key = ? AND claim_token = ? AND state = 'pending'`,
    [
      response.status,
      JSON.stringify(response.headers),
      response.body === undefined ? null : JSON.stringify(response.body),
      principal,
      key,
      token,
    ],
  );
  if (updated !== 1) {
    throw new AllotError(
      'request-in-progress',
      'another request took over this idempotency key; retry to read its outcome',
    );
  }
}

/** Gives a claim up after an unexpected failure, so a retry runs the request afresh. */
export async function abandonKey(store: Store, principal: string, key: string, token: string) {
  await store.transaction((tx) =>
    tx.run(
      `DELETE FROM idempotency_keys WHERE principal = ? AND idempotency_key = ? AND claim_token = ?
        AND state = 'pending'`,
      [principal, key, token],
    ),
  );
}

/** Forgets keys past their retention. */
export async function purgeKeys(store: Store, nowMs: number): Promise<number> {
  return store.transaction((tx) =>
    tx.run('DELETE FROM idempotency_keys WHERE created_at <= ?', [nowMs - idempotencyRetentionMs]),
  );
}
