// Goal: quantity parsing accepts exactly the integers and suffixed strings of the API, and
// refuses everything else with a reason. Method: table of inputs, plus a property over numbers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quantityMax } from '../../src/domain/constants.js';
import { parseQuantity } from '../../src/domain/quantity.js';

describe('parseQuantity', () => {
  it.each([
    [0, 0],
    [42, 42],
    [quantityMax, quantityMax],
    ['0', 0],
    ['17', 17],
    ['2k', 2000],
    ['3M', 3_000_000],
    ['1G', 1e9],
    ['500Mi', 500 * 1024 ** 2],
    ['1Ti', 1024 ** 4],
    ['1Ki', 1024],
    ['4Pi', 4 * 1024 ** 5],
    ['7E', 7e18 > quantityMax ? NaN : 7e18],
  ])('accepts %j as %d', (input, expected) => {
    if (Number.isNaN(expected)) {
      expect(parseQuantity(input).ok).toBe(false);
      return;
    }
    expect(parseQuantity(input)).toEqual({ ok: true, value: expected });
  });

  it.each([
    -1,
    1.5,
    0.1,
    quantityMax + 1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    '',
    '-1',
    '+1',
    '1.5',
    '1e3',
    '1 k',
    'k',
    '1K',
    '1ki',
    '1m',
    '1Ei',
    '9007199254740992',
    '99999999999999999999',
    ' 1',
    null,
    true,
    {},
    [],
  ])('refuses %j', (input) => {
    const result = parseQuantity(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason.length).toBeGreaterThan(0);
  });

  it('accepts every safe non-negative integer and nothing negative', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: quantityMax }), (n) => {
        expect(parseQuantity(n)).toEqual({ ok: true, value: n });
        expect(parseQuantity(String(n))).toEqual({ ok: true, value: n });
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 }), (n) => {
        expect(parseQuantity(n).ok).toBe(false);
      }),
    );
  });
});
