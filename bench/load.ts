/**
 * A closed-loop load: `concurrency` workers each run `operation` back to back until the time
 * is up; throughput and latency percentiles come from every completed operation.
 */
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  operations: number;
  failures: number;
  /** The first failure's message, to say why. */
  firstFailure?: string;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

export type Operation = (worker: number, sequence: number) => Promise<void>;

export async function runLoad(
  concurrency: number,
  durationMs: number,
  operation: Operation,
  warmupMs = Math.min(500, durationMs / 4),
): Promise<LoadResult> {
  let sequence = 0;
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  let measuring = false;
  const start = performance.now();
  const measureFrom = start + warmupMs;
  const end = measureFrom + durationMs;
  const worker = async (index: number) => {
    for (;;) {
      const begin = performance.now();
      if (begin >= end) return;
      if (!measuring && begin >= measureFrom) measuring = true;
      const counted = begin >= measureFrom;
      try {
        await operation(index, (sequence += 1));
        if (counted) latencies.push(performance.now() - begin);
      } catch (error) {
        if (counted) failures += 1;
        firstFailure ??= error instanceof Error ? error.message : String(error);
        if (failures > 1000) throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => worker(index)));
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) =>
    latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!;
  return {
    operations: latencies.length,
    failures,
    firstFailure,
    throughput: latencies.length / (durationMs / 1000),
    p50Ms: round(percentile(0.5)),
    p99Ms: round(percentile(0.99)),
  };
}

export const round = (value: number, digits = 2) => Number(value.toFixed(digits));
