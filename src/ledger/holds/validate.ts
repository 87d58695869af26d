/** A hold's input and a confirm's, as the library and the API take them. */
import { holdTtlSecondsMax, holdTtlSecondsMin } from '../../domain/constants.js';
import type { Line } from '../../domain/decision.js';
import { invalid } from '../../domain/errors.js';
import type { CheckedHoldInput, ConfirmInput, HoldInput } from '../types.js';
import { checkAllocationInput } from '../allocations/validate.js';
import { checkLines } from '../validate.js';

export function checkHoldInput(input: HoldInput): CheckedHoldInput {
  const ttl = input?.ttlSeconds;
  if (!Number.isInteger(ttl) || ttl < holdTtlSecondsMin || ttl > holdTtlSecondsMax) {
    throw invalid('ttlSeconds', `must be an integer from ${holdTtlSecondsMin} to ${holdTtlSecondsMax}`);
  }
  return { ...checkAllocationInput(input), ttlSeconds: ttl };
}

export function checkConfirmInput(input: ConfirmInput | undefined): Line[] | undefined {
  return input?.allocations === undefined ? undefined : checkLines(input.allocations);
}
