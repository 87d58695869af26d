/**
 * Quantities are exact non-negative integers in base units. Requests may also send them as
 * strings with a suffix (`"1Ti"`, `"500Mi"`, `"2k"`), the Kubernetes spelling: decimal
 * suffixes k M G T P E (powers of 1000) and binary suffixes Ki Mi Gi Ti Pi Ei (powers of 1024).
 * Fractions, exponents, signs and anything above `quantityMax` are refused.
 */
import { quantityMax } from './constants.js';

export type Quantity = number;

const suffixFactors: Record<string, bigint> = {
  '': 1n,
  k: 1000n,
  M: 1000n ** 2n,
  G: 1000n ** 3n,
  T: 1000n ** 4n,
  P: 1000n ** 5n,
  E: 1000n ** 6n,
  Ki: 1024n,
  Mi: 1024n ** 2n,
  Gi: 1024n ** 3n,
  Ti: 1024n ** 4n,
  Pi: 1024n ** 5n,
  Ei: 1024n ** 6n,
};

const quantityPattern = /^([0-9]{1,20})(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The JSON Schema pattern for quantity strings, kept beside the parser it mirrors. */
export const quantityStringPattern = quantityPattern.source;

export type QuantityParse = { ok: true; value: Quantity } | { ok: false; reason: string };

export function parseQuantity(input: unknown): QuantityParse {
  if (typeof input === 'number') return checkNumber(input);
  if (typeof input !== 'string') return { ok: false, reason: 'must be an integer or a quantity string' };
  const match = quantityPattern.exec(input);
  if (!match) {
    return { ok: false, reason: 'must be digits with an optional suffix (k M G T P E Ki Mi Gi Ti Pi Ei)' };
  }
  const factor = suffixFactors[match[2] ?? ''];
  if (factor === undefined) return { ok: false, reason: 'unknown suffix' };
  const value = BigInt(match[1]!) * factor;
  if (value > BigInt(quantityMax)) return { ok: false, reason: `must not exceed ${quantityMax}` };
  return { ok: true, value: Number(value) };
}

function checkNumber(input: number): QuantityParse {
  if (!Number.isInteger(input)) return { ok: false, reason: 'must be a whole number' };
  if (input < 0) return { ok: false, reason: 'must not be negative' };
  if (input > quantityMax) return { ok: false, reason: `must not exceed ${quantityMax}` };
  return { ok: true, value: input };
}
