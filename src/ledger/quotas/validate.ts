/** Quota and project quota inputs: one entry per kind, quantities parsed. */
import { invalid } from '../../domain/errors.js';
import type { CheckedProjectQuotaInput, CheckedQuotaInput, ProjectQuotaInput, QuotaInput } from '../types.js';
import { checkKindList, checkQuantity } from '../validate.js';

export function checkQuotaInputs(inputs: readonly QuotaInput[]): CheckedQuotaInput[] {
  return checkKindList('quotas', inputs, (item, field) => ({
    kind: item.kind,
    quantity: item.quantity === null ? null : checkQuantity(`${field}.quantity`, item.quantity),
  }));
}

export function checkProjectQuotaInputs(inputs: readonly ProjectQuotaInput[]): CheckedProjectQuotaInput[] {
  return checkKindList('quotas', inputs, (item, field) => {
    const cap = item.cap === undefined || item.cap === null ? null : checkQuantity(`${field}.cap`, item.cap);
    const guaranteed =
      item.guaranteed === undefined || item.guaranteed === null ? 0 : checkQuantity(`${field}.guaranteed`, item.guaranteed);
    // A guarantee the cap would never let the project use would only keep capacity idle.
    if (cap !== null && guaranteed > cap) throw invalid(`${field}.guaranteed`, `must not exceed cap (${cap})`);
    return { kind: item.kind, cap, guaranteed };
  });
}
