/**
 * Counts refused decisions for the denial digest: per organization, minute, kind and scope,
 * in memory, added to the ledger each second (a refusal commits nothing of its own to count
 * it in). Dry runs are not counted: nothing was asked for.
 */
import type { Ledger } from '../ledger/ledger.js';
import type { DenialCount } from '../ledger/subscriptions/denials.js';

const flushMs = 1000;

/** Adds `count` to what `counts` holds under its key. */
function add(counts: Map<string, DenialCount>, count: DenialCount): void {
  const key = JSON.stringify([count.organization, count.minute, count.kind, count.scope, count.project]);
  const held = counts.get(key);
  if (held !== undefined) held.count += count.count;
  else counts.set(key, { ...count });
}

export function recordDenials(ledger: Ledger, onError: (error: unknown) => void): { stop(): Promise<void> } {
  let counts = new Map<string, DenialCount>();
  const stopListening = ledger.engine.onDecision(({ decision, outcome }) => {
    if (decision.dryRun === true || outcome instanceof Error || outcome.kind !== 'decided') return;
    const minute = Math.floor(ledger.clock.nowMs() / 60_000) * 60_000;
    outcome.outcomes.forEach((result, i) => {
      if (result.status !== 'refused' || result.error.code !== 'quota-exceeded') return;
      const operation = decision.operations[i] ?? decision.operations[0]!;
      const project = 'project' in operation ? operation.project : '';
      for (const violation of result.error.extensions.violations ?? []) {
        const scoped = violation.scope === 'organization' ? '' : project;
        add(counts, { organization: operation.organization, minute, kind: violation.kind, scope: violation.scope, project: scoped, count: 1 });
      }
    });
  });
  const flush = async () => {
    if (counts.size === 0) return;
    const batch = counts;
    counts = new Map();
    await ledger.addDenials([...batch.values()]).catch((error: unknown) => {
      // Kept for the next flush: a passing database failure loses no count.
      for (const count of batch.values()) add(counts, count);
      onError(error);
    });
  };
  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();
  return {
    async stop() {
      stopListening();
      clearInterval(timer);
      await flush();
    },
  };
}
