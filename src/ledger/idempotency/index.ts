/**
 * Idempotency keys of the writes that are not decisions (limits, regions): claimed before the
 * write, its answer stored in the write's own transaction (`completeKey` in its `record` hook),
 * or after a refusal, or the claim given up after a failure. Decisions keep their keys in the
 * group commit itself (engine/).
 */
import type { Executor } from '../../store/store.js';
import type { Core } from '../core.js';
import { abandonKey, claimKey, completeKey, purgeKeys, type StoredResponse } from './keys.js';

export const idempotencyOf = (core: Core) => ({
  /** Claims `key` for `principal`'s request, or says why not (done, reused, pending). */
  claimKey(principal: string, key: string, requestHash: string) {
    return claimKey(core.store, principal, key, requestHash, core.clock.nowMs());
  },

  /**
   * The `record` hook of a write under a claimed key: stores its answer in the write's own
   * transaction (fails the write if another request took the key over meanwhile).
   */
  keyRecorder(principal: string, key: string, token: string) {
    return (tx: Executor, response: StoredResponse): Promise<void> => completeKey(tx, principal, key, token, response);
  },

  /** Stores the answer of a claimed key in its own transaction (a refusal's, which wrote nothing). */
  completeKey(principal: string, key: string, token: string, response: StoredResponse): Promise<void> {
    return core.store.transaction((tx) => completeKey(tx, principal, key, token, response));
  },

  /** Gives a claim up after an unexpected failure, so a retry runs the request afresh. */
  abandonKey(principal: string, key: string, token: string): Promise<void> {
    return abandonKey(core.store, principal, key, token);
  },

  /** Forgets keys past their retention. */
  purgeKeys(): Promise<number> {
    return purgeKeys(core.store, core.clock.nowMs());
  },
});
