/**
 * After the run, with every server stopped (so no request is still running): the operations
 * no client heard back from get their outcome from the idempotency record the server stores
 * in the same transaction as the change. A record with an answer is that answer; a record
 * still pending (or none) means the request changed nothing — which is checked for the
 * operations that would have left a trace: no record of the resource they would have created
 * may exist. Then the faults of `--inject-fault` are planted, to prove the checks can fail.
 */
import type { Ledger } from '../../src/index.js';
import { applyAnswer, type AnswerContext } from './answers.js';
import { plant, recordsOfResources, storedAnswers } from './database.js';
import type { Model } from './model.js';
import type { FaultKind } from './options.js';

export async function resolveUnanswered(context: AnswerContext, db: string): Promise<void> {
  const { model, stats, violations } = context;
  const ops = model.unanswered;
  const stored = await storedAnswers(db, ops.map((op) => op.call.key));
  const noEffect = ops.filter((op) => stored.get(op.call.key)?.state !== 'done');
  for (const op of ops) {
    const record = stored.get(op.call.key);
    if (op.entity) op.entity.uncertain = false;
    if (record?.state === 'done' && record.status !== null) {
      stats.resolvedFromStore += 1;
      applyAnswer(context, op, { status: record.status, body: record.body }, 'store');
    } else {
      stats.resolvedNoEffect += 1;
    }
  }
  // Resources these requests would have created (or moved an allocation to), and those of
  // creates that were refused: none may exist.
  const traces = [...noEffect.flatMap((op) => op.parts ?? [op]), ...model.refused].flatMap((op) =>
    op.resource !== undefined && (op.entity === undefined || op.entity.resource.id !== op.resource.id)
      ? [{ op, resourceId: op.resource.id }]
      : [],
  );
  const records = await recordsOfResources(db, traces.map((trace) => trace.resourceId));
  for (const { op, resourceId } of traces) {
    const found = records.get(resourceId);
    if (found !== undefined) {
      violations.add(
        'change-without-answer',
        `${op.kind} (key ${op.call.key}) was refused or has no stored answer, yet resource ${resourceId} has records ${found.join(', ')}`,
      );
    }
  }
}

/** Breaks the books behind the ledger's back, as a bug would. */
export async function injectFault(
  fault: FaultKind,
  ledger: Ledger,
  model: Model,
  db: string,
): Promise<string> {
  const organization = 'org-a';
  const now = Date.now();
  switch (fault) {
    case 'counter':
      await plant(db, async (tx) => {
        await tx.run(
          `INSERT INTO quota_counters (organization_id, kind, quota, committed, reserved, held, updated_at)
            VALUES (?, 'gpus', NULL, 3, 0, 0, ?)
            ON CONFLICT (organization_id, kind) DO UPDATE SET committed = quota_counters.committed + 3`,
          [organization, now],
        );
      });
      return `raised the committed gpus counter of ${organization} by 3`;

    case 'overcommit': {
      // What a decision that skipped the quota check would write: an allocation, its line,
      // the counter and a journal entry, all consistent with one another — only over quota.
      const gpus = (await ledger.getQuotas(organization)).find((row) => row.kind === 'gpus')!;
      const amount = (gpus.quantity ?? 0) - gpus.used + 5;
      const id = `0190a000-0000-7000-8000-${String(now % 1e12).padStart(12, '0')}`;
      const resource = { kind: 'server', id: 'injected-overcommit' };
      const lines = [{ kind: 'gpus', committed: amount, reserved: 0 }];
      await plant(db, async (tx) => {
        await tx.run(
          `INSERT INTO allocations (id, organization_id, project_id, resource_kind, resource_id, state,
            generation, created_by, updated_by, created_at, updated_at) VALUES (?, ?, 'web', ?, ?, 'live', 1, 'chaos', 'chaos', ?, ?)`,
          [id, organization, resource.kind, resource.id, now, now],
        );
        await tx.run(`INSERT INTO allocation_lines (allocation_id, organization_id, kind, committed, reserved) VALUES (?, ?, 'gpus', ?, 0)`, [id, organization, amount]);
        await tx.run(`UPDATE quota_counters SET committed = committed + ? WHERE organization_id = ? AND kind = 'gpus'`, [amount, organization]);
        await tx.run(
          `INSERT INTO project_counters (organization_id, project_id, kind, committed, updated_at) VALUES (?, 'web', 'gpus', ?, ?)
            ON CONFLICT (organization_id, project_id, kind) DO UPDATE SET committed = project_counters.committed + ?`,
          [organization, amount, now, amount],
        );
        const [row] = await tx.all<{ revision: number | string }>(`UPDATE organizations SET revision = revision + 1 WHERE id = ? RETURNING revision`, [organization]);
        await tx.run(
          `INSERT INTO journal (organization_id, revision, project_id, at, principal, action, subject_id, changes, deltas)
            VALUES (?, ?, 'web', ?, 'chaos', 'allocation.created', ?, ?, ?)`,
          [
            organization,
            Number(row!.revision),
            now,
            id,
            JSON.stringify({ resource, before: null, after: lines }),
            JSON.stringify([{ kind: 'gpus', committed: amount, reserved: 0, held: 0 }]),
          ],
        );
      });
      return `allocated ${amount} gpus in ${organization} past its quota of ${gpus.quantity} (${gpus.used} used)`;
    }

    case 'lost-write': {
      const live = [...model.entities.values()].find((e) => e.status === 'live' && !e.uncertain);
      if (live === undefined) throw new Error('no acknowledged live allocation to lose');
      await plant(db, async (tx) => {
        await tx.run('UPDATE allocations SET deleted_at = ? WHERE id = ?', [now, live.id]);
      });
      return `deleted allocation ${live.id} behind the ledger's back`;
    }

    case 'gap':
      await plant(db, async (tx) => {
        await tx.run(
          `UPDATE journal SET revision = revision + 1 WHERE organization_id = ?
            AND revision = (SELECT revision FROM organizations WHERE id = ?)`,
          [organization, organization],
        );
        await tx.run('UPDATE organizations SET revision = revision + 1 WHERE id = ?', [organization]);
      });
      return `moved the last journal entry of ${organization} one revision up`;
  }
}
