/**
 * The background sweeper of a server process: resolves expired holds (journaling each), ends
 * quota requests pending past their time, and forgets idempotency keys past their retention. Passes never overlap; several processes may
 * sweep at once, since expiries are decisions like any other (`holds.expire`, through the
 * group commit), each hold read under lock and resolved at most once.
 */
import { sweepIntervalMs } from '../../domain/constants.js';
import type { Ledger } from '../ledger.js';

const purgeEveryPasses = 60;

export function startSweeper(
  ledger: Ledger,
  onError: (error: unknown) => void,
  intervalMs = sweepIntervalMs,
): () => Promise<void> {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let pass = 0;
  const tick = () => {
    running = (async () => {
      try {
        await ledger.sweepExpiredHolds();
        await ledger.expireQuotaRequests();
        if (pass % purgeEveryPasses === 0) await ledger.purgeKeys();
      } catch (error) {
        onError(error);
      }
      pass += 1;
      if (!stopped) timer = setTimeout(tick, intervalMs);
    })();
  };
  timer = setTimeout(tick, intervalMs);
  return async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
  };
}
