// Goal: the pure decision rules say what DESIGN.md says. Method: examples for each rule and a
// property that `allows` never lets usage rise above the limit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { quantityMax } from '../../src/domain/constants.js';
import {
  allows,
  confirmExceeding,
  deltasBetween,
  effectiveLimit,
  limitChangeAllowed,
  usageOf,
} from '../../src/domain/decision.js';

describe('deltasBetween', () => {
  it('is the per-kind difference, sorted by kind, without zero deltas', () => {
    const before = [
      { kind: 'ram', committed: 10, reserved: 0 },
      { kind: 'gpus', committed: 2, reserved: 1 },
    ];
    const after = [
      { kind: 'gpus', committed: 3, reserved: 0 },
      { kind: 'disk', committed: 5, reserved: 5 },
      { kind: 'ram', committed: 10, reserved: 0 },
    ];
    expect(deltasBetween(usageOf(before, 'live'), usageOf(after, 'live'))).toEqual([
      { kind: 'disk', committed: 5, reserved: 5, held: 0, used: 10 },
      { kind: 'gpus', committed: 1, reserved: -1, held: 0, used: 0 },
    ]);
  });

  it('of a create is the whole allocation, of a delete its negation', () => {
    const lines = usageOf([{ kind: 'gpus', committed: 2, reserved: 1 }], 'live');
    expect(deltasBetween([], lines)).toEqual([{ kind: 'gpus', committed: 2, reserved: 1, held: 0, used: 3 }]);
    expect(deltasBetween(lines, [])).toEqual([{ kind: 'gpus', committed: -2, reserved: -1, held: 0, used: -3 }]);
  });

  it('counts a hold as held, and its confirm as a move from held to committed and reserved', () => {
    const held = usageOf([{ kind: 'gpus', committed: 2, reserved: 2 }], 'held');
    const confirmed = usageOf([{ kind: 'gpus', committed: 3, reserved: 0 }], 'live');
    expect(deltasBetween([], held)).toEqual([{ kind: 'gpus', committed: 0, reserved: 0, held: 4, used: 4 }]);
    expect(deltasBetween(held, confirmed)).toEqual([
      { kind: 'gpus', committed: 3, reserved: 0, held: -4, used: -1 },
    ]);
  });
});

describe('confirmExceeding', () => {
  const held = [
    { kind: 'gpus', committed: 2, reserved: 2 },
    { kind: 'ram', committed: 8, reserved: 0 },
  ];
  it('allows confirming all or less of what is held', () => {
    expect(confirmExceeding(held, held)).toBeNull();
    expect(confirmExceeding(held, [{ kind: 'gpus', committed: 4, reserved: 0 }])).toBeNull();
    expect(confirmExceeding(held, [])).toBeNull();
  });
  it('names the kind confirmed beyond the hold, or not held at all', () => {
    expect(confirmExceeding(held, [{ kind: 'gpus', committed: 4, reserved: 1 }])).toBe('gpus');
    expect(confirmExceeding(held, [{ kind: 'disk', committed: 1, reserved: 0 }])).toBe('disk');
  });
});

describe('effectiveLimit', () => {
  it('is the quota, else the default, else unlimited', () => {
    expect(effectiveLimit(5, 10)).toBe(5);
    expect(effectiveLimit(0, 10)).toBe(0);
    expect(effectiveLimit(null, 10)).toBe(10);
    expect(effectiveLimit(null, 0)).toBe(0);
    expect(effectiveLimit(null, null)).toBe(quantityMax);
  });
});

describe('allows', () => {
  it('lets usage rise up to the limit and no further', () => {
    expect(allows(40, 10, 50)).toBe(true);
    expect(allows(40, 11, 50)).toBe(false);
    expect(allows(0, 1, 0)).toBe(false);
  });

  it('always lets a kind over its limit go down or stay level', () => {
    expect(allows(80, -5, 50)).toBe(true);
    expect(allows(80, 0, 50)).toBe(true);
    expect(allows(80, 1, 50)).toBe(false);
  });

  it('never allows a rise that ends above the limit', () => {
    fc.assert(
      fc.property(fc.nat(1e9), fc.integer({ min: -1e9, max: 1e9 }), fc.nat(1e9), (used, delta, limit) => {
        if (allows(used, delta, limit) && delta > 0) expect(used + delta).toBeLessThanOrEqual(limit);
        if (delta <= 0) expect(allows(used, delta, limit)).toBe(true);
      }),
    );
  });
});

describe('limitChangeAllowed', () => {
  it('refuses a limit below usage unless forced', () => {
    expect(limitChangeAllowed(10, 10, false)).toBe(true);
    expect(limitChangeAllowed(10, 9, false)).toBe(false);
    expect(limitChangeAllowed(10, 9, true)).toBe(true);
  });
});
