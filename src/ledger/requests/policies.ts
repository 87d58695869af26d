/**
 * Per kind: which organization quota increases are approved without a person (up to an amount
 * or a percent of the current quota, at most N per organization and period), how deep a
 * requested cut may go without force (the safety check), and how long a request stays pending.
 */
import type { Static } from '@sinclair/typebox';
import type * as wire from '../../schemas/index.js';
import type { Executor } from '../../store/store.js';
import { approvedByPolicy } from './requests.js';

export type RequestPolicy = Static<typeof wire.RequestPolicy>;
export type RequestPolicyInput = Static<typeof wire.RequestPolicyBody>;

/** Without a policy of its own: nothing approved by policy, cuts past half need force, a week to decide. */
export const defaultPolicy: RequestPolicy = { autoApprove: null, decreaseMaxPercent: 50, expiresAfterSeconds: 7 * 86_400 };

interface PolicyRow {
  auto_max_increase: number | string | null;
  auto_max_increase_percent: number | string | null;
  auto_per_period: number | string | null;
  auto_period_ms: number | string | null;
  decrease_max_percent: number | string | null;
  expires_after_ms: number | string;
}

const n = (value: number | string | null) => (value === null ? null : Number(value));

export async function policyOf(tx: Executor, kind: string): Promise<RequestPolicy> {
  const row = await tx.get<PolicyRow>('SELECT * FROM quota_request_policies WHERE kind = ?', [kind]);
  if (!row) return defaultPolicy;
  return {
    autoApprove:
      row.auto_per_period === null
        ? null
        : {
            maxIncrease: n(row.auto_max_increase),
            maxIncreasePercent: n(row.auto_max_increase_percent),
            perPeriod: Number(row.auto_per_period),
            periodSeconds: Number(row.auto_period_ms) / 1000,
          },
    decreaseMaxPercent: n(row.decrease_max_percent),
    expiresAfterSeconds: Number(row.expires_after_ms) / 1000,
  };
}

/** Changes the listed parts of a kind's policy (the rest stays). */
export async function putPolicy(tx: Executor, kind: string, input: RequestPolicyInput, principal: string, nowMs: number): Promise<RequestPolicy> {
  const policy = { ...(await policyOf(tx, kind)), ...input };
  const auto = policy.autoApprove;
  await tx.run(
    `INSERT INTO quota_request_policies (kind, auto_max_increase, auto_max_increase_percent, auto_per_period, auto_period_ms,
      decrease_max_percent, expires_after_ms, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (kind) DO UPDATE SET auto_max_increase = excluded.auto_max_increase,
        auto_max_increase_percent = excluded.auto_max_increase_percent, auto_per_period = excluded.auto_per_period,
        auto_period_ms = excluded.auto_period_ms, decrease_max_percent = excluded.decrease_max_percent,
        expires_after_ms = excluded.expires_after_ms, updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
    [
      kind,
      auto?.maxIncrease ?? null,
      auto?.maxIncreasePercent ?? null,
      auto?.perPeriod ?? null,
      auto === null ? null : auto.periodSeconds * 1000,
      policy.decreaseMaxPercent,
      policy.expiresAfterSeconds * 1000,
      principal,
      nowMs,
    ],
  );
  return policyOf(tx, kind);
}

/**
 * Whether the policy approves raising `current` to `preferred` in `organization` now. Takes
 * the policy row's lock first: approvals by policy of a kind are counted one transaction at a
 * time, across processes, so N per period holds under any concurrency.
 */
export async function approvesByPolicy(
  tx: Executor,
  policy: RequestPolicy,
  request: { organization: string; kind: string; current: number | null; preferred: number },
  nowMs: number,
): Promise<boolean> {
  const auto = policy.autoApprove;
  const { current, preferred } = request;
  if (auto === null || current === null || preferred <= current) return false;
  const increase = preferred - current;
  const small =
    (auto.maxIncrease != null && increase <= auto.maxIncrease) ||
    (auto.maxIncreasePercent != null && increase * 100 <= current * auto.maxIncreasePercent);
  if (!small) return false;
  await tx.run('UPDATE quota_request_policies SET kind = kind WHERE kind = ?', [request.kind]);
  return (await approvedByPolicy(tx, request.organization, request.kind, nowMs - auto.periodSeconds * 1000)) < auto.perPeriod;
}
