import {
  transactionBackoffMsMax,
  transactionBackoffMsMin,
  transactionRetriesMax,
} from '../domain/constants.js';

/**
 * Runs `attempt` until it succeeds, retrying only errors that `isRetryable` accepts, at most
 * `transactionRetriesMax` times, with full-jitter exponential backoff. A denial is never
 * retryable: only the engine's "try again" errors are. `onRetry` hears of each retry (metrics).
 */
export async function withRetries<T>(
  attempt: () => Promise<T>,
  isRetryable: (error: unknown) => boolean,
  onRetry?: (error: unknown) => void,
): Promise<T> {
  for (let retry = 0; ; retry += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (retry >= transactionRetriesMax || !isRetryable(error)) throw error;
      onRetry?.(error);
      const ceilingMs = Math.min(transactionBackoffMsMax, transactionBackoffMsMin * 2 ** retry);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceilingMs));
    }
  }
}
