// Goal: the threshold rule alerts once per crossing of a level, and clears only once usage has
// fallen below the level by more than the hysteresis (or to 0), whatever the walk of usage and
// the changes of limit (to none and back); and a threshold set is refused when malformed.
// Method: a property over random level sets (fractions or quantities, with random hysteresis)
// and random walks of usage with occasional limit changes, stepped from `initialState` and
// compared with a reference that labels each point per level (reaching / fallen / in between /
// inactive) and counts the changes of regime; a property that usage oscillating inside the
// hysteresis band crosses once and never clears; examples worked out by hand from the rule;
// and the validation's refusals. Deterministic: fixed seed (THRESHOLDS_SEED to try another).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkThresholdLevels,
  hysteresisDefault,
  initialState,
  levelCount,
  stepThresholds,
  type ThresholdEvent,
  type ThresholdLevels,
} from '../../src/domain/thresholds.js';

const seed = Number(process.env.THRESHOLDS_SEED ?? 20_240_611);
const numRuns = 200;

interface Point {
  usage: number;
  limit: number | null;
}

const hysteresis = fc.option(
  fc.oneof(fc.constantFrom(0, 0.05, 0.5, 0.99), fc.integer({ min: 0, max: 99 }).map((n) => n / 100)),
  { nil: undefined },
);
const levelSet: fc.Arbitrary<ThresholdLevels> = fc.oneof(
  fc.record({
    at: fc.uniqueArray(fc.integer({ min: 1, max: 1000 }).map((n) => n / 100), { minLength: 1, maxLength: 10 }),
    hysteresis,
  }),
  fc.record({
    quantities: fc.uniqueArray(fc.integer({ min: 1, max: 250 }), { minLength: 1, maxLength: 10 }),
    hysteresis,
  }),
);
const limitValue = fc.option(fc.integer({ min: 0, max: 250 }), { nil: null, freq: 4 });
/** A walk: a start, then steps of usage up and down (clamped at 0) and now and then a new limit. */
const walk: fc.Arbitrary<Point[]> = fc
  .record({
    start: fc.record({ usage: fc.integer({ min: 0, max: 250 }), limit: limitValue }),
    steps: fc.array(
      fc.record({
        delta: fc.oneof(
          { weight: 10, arbitrary: fc.integer({ min: -20, max: 20 }) },
          { weight: 1, arbitrary: fc.integer({ min: -300, max: 300 }) },
        ),
        limit: fc.oneof(
          { weight: 12, arbitrary: fc.constant('same' as const) },
          { weight: 1, arbitrary: limitValue },
        ),
      }),
      { minLength: 50, maxLength: 300 },
    ),
  })
  .map(({ start, steps }) => {
    const points: Point[] = [start];
    for (const step of steps) {
      const last = points[points.length - 1]!;
      const limit = step.limit === 'same' ? last.limit : step.limit;
      points.push({ usage: Math.max(0, last.usage + step.delta), limit });
    }
    return points;
  });

type Label = 'reaching' | 'fallen' | 'between' | 'inactive';

/** One level and its hysteresis band as quantities at `limit`, straight from the definitions. */
function levelOf(levels: ThresholdLevels, index: number, limit: number | null) {
  const h = levels.hysteresis ?? hysteresisDefault;
  if (levels.at) return limit === null ? null : { level: levels.at[index]! * limit, band: h * limit };
  const level = levels.quantities![index]!;
  return { level, band: h * (limit === null ? level : limit) };
}

/** Where a point stands against one level. */
function labelOf(levels: ThresholdLevels, index: number, { usage, limit }: Point): Label {
  const found = levelOf(levels, index, limit);
  if (found === null) return 'inactive';
  if (usage > 0 && usage >= found.level) return 'reaching';
  if (usage < found.level - found.band || usage <= 0) return 'fallen';
  return 'between';
}

/**
 * Per level: whether it starts above, and how many times the walk changes regime. Points
 * between the two edges, or inactive, change nothing, so they are dropped; each change between
 * the remaining labels is one crossing or one clearing.
 */
function reference(levels: ThresholdLevels, points: readonly Point[]) {
  return Array.from({ length: levelCount(levels) }, (_, index) => {
    const labels = points.map((point) => labelOf(levels, index, point));
    const initiallyAbove = labels[0] === 'reaching';
    const regimes = [initiallyAbove ? 'reaching' : 'fallen', ...labels.slice(1)].filter(
      (label) => label === 'reaching' || label === 'fallen',
    );
    let crossed = 0;
    let cleared = 0;
    for (let i = 1; i < regimes.length; i += 1) {
      if (regimes[i] === regimes[i - 1]) continue;
      if (regimes[i] === 'reaching') crossed += 1;
      else cleared += 1;
    }
    return { initiallyAbove, crossed, cleared };
  });
}

/**
 * Steps through the points from the silent start, checking each step as it goes (problems are
 * collected and checked once: an expect per level and step would take most of the time);
 * returns each level's events in order.
 */
function run(levels: ThresholdLevels, points: readonly Point[]): ThresholdEvent[][] {
  const [first, ...rest] = points;
  let above = initialState(levels, first!.usage, first!.limit);
  const perLevel: ThresholdEvent[][] = above.map(() => []);
  const problems: string[] = [];
  for (const [t, point] of rest.entries()) {
    const before = Object.freeze([...above]);
    const { above: after, events } = stepThresholds(levels, before, point.usage, point.limit);
    const at = `step ${t + 1} (usage ${point.usage}, limit ${point.limit})`;
    if (after.length !== before.length) problems.push(`${at}: ${after.length} flags`);
    // Events in level order, each the flip of one level, with the step's level, usage and limit.
    events.forEach((event, k) => {
      if (k > 0 && event.index <= events[k - 1]!.index) problems.push(`${at}: events out of order`);
      const expected = { ...event, level: levelOf(levels, event.index, point.limit)?.level, ...point };
      if (JSON.stringify(event) !== JSON.stringify(expected)) problems.push(`${at}: ${JSON.stringify(event)}`);
      perLevel[event.index]?.push(event);
    });
    for (const [index, flag] of after.entries()) {
      const flipped = events.find((event) => event.index === index);
      const label = labelOf(levels, index, point);
      if (flag !== (flipped ? flipped.type === 'crossed' : before[index])) problems.push(`${at}: level ${index} flipped silently`);
      if (label === 'reaching' && !flag) problems.push(`${at}: level ${index} reached but not above`);
      if (label === 'fallen' && flag) problems.push(`${at}: level ${index} fallen but above`);
      if (label === 'inactive' && flipped) problems.push(`${at}: inactive level ${index} emitted`);
    }
    above = after;
  }
  expect(problems).toEqual([]);
  return perLevel;
}

describe('stepThresholds over random walks', () => {
  it('emits per level exactly the regime changes of the reference, alternating', () => {
    fc.assert(
      fc.property(levelSet, walk, (levels, points) => {
        expect(checkThresholdLevels(levels)).toBeNull();
        const perLevel = run(levels, points);
        for (const [index, expected] of reference(levels, points).entries()) {
          const types = perLevel[index]!.map((event) => event.type);
          expect(types.filter((type) => type === 'crossed').length).toBe(expected.crossed);
          expect(types.filter((type) => type === 'cleared').length).toBe(expected.cleared);
          types.forEach((type, k) => {
            // Starting above, the first event is a clearing; otherwise a crossing; then in turn.
            expect(type).toBe((k % 2 === 0) === expected.initiallyAbove ? 'cleared' : 'crossed');
          });
        }
      }),
      { numRuns, seed },
    );
  });

  it('starts where a first step from nothing would end, without its events', () => {
    fc.assert(
      fc.property(levelSet, fc.integer({ min: 0, max: 250 }), limitValue, (levels, usage, limit) => {
        const none = Array.from({ length: levelCount(levels) }, () => false);
        expect(initialState(levels, usage, limit)).toEqual(stepThresholds(levels, none, usage, limit).above);
      }),
      { numRuns, seed },
    );
  });

  it('crosses once and never clears while usage oscillates inside the hysteresis band', () => {
    const single = fc.oneof(
      fc.record({
        levels: fc.record({ at: fc.tuple(fc.integer({ min: 1, max: 1000 }).map((n) => n / 100)) }),
        limit: fc.integer({ min: 1, max: 1_000_000 }),
      }),
      fc.record({
        levels: fc.record({ quantities: fc.tuple(fc.integer({ min: 1, max: 1_000_000 })) }),
        limit: fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: null }),
      }),
    );
    const h = fc.integer({ min: 1, max: 99 }).map((n) => n / 100);
    fc.assert(
      fc.property(single, h, ({ levels: given, limit }, hysteresis) => {
        const levels: ThresholdLevels = { ...given, hysteresis };
        const level = levels.at ? levels.at[0]! * limit! : levels.quantities![0]!;
        const low = level - (hysteresis * (limit ?? level)) / 2;
        // A band wider than twice the level would take usage to 0, which clears by rule.
        fc.pre(low > 0);
        const points = Array.from({ length: 100 }, (_, i) => ({ usage: i % 2 === 0 ? level : low, limit }));
        const events = run(levels, [{ usage: 0, limit }, ...points]).flat();
        expect(events).toEqual([{ index: 0, type: 'crossed', level, usage: level, limit }]);
      }),
      { numRuns, seed },
    );
  });
});

/** Each step's state and events through `points`, from the silent start at the first. */
function eventsOf(levels: ThresholdLevels, points: readonly Point[]) {
  const [first, ...rest] = points;
  let above = initialState(levels, first!.usage, first!.limit);
  return rest.map(({ usage, limit }) => {
    const step = stepThresholds(levels, above, usage, limit);
    above = step.above;
    return { above, events: step.events.map(({ index, type, level }) => ({ index, type, level })) };
  });
}
const at = (usage: number, limit: number | null): Point => ({ usage, limit });

describe('stepThresholds examples', () => {
  it('crosses 80, 95 and 100 on the way up, and clears each once below it less 5', () => {
    const steps = eventsOf({ at: [0.8, 0.95, 1] }, [0, 85, 96, 100, 94, 90, 70].map((u) => at(u, 100)));
    expect(steps.map((step) => step.events)).toEqual([
      [{ index: 0, type: 'crossed', level: 80 }],
      [{ index: 1, type: 'crossed', level: 95 }],
      [{ index: 2, type: 'crossed', level: 100 }],
      // 94 < 100 - 5: the 100 level clears; 94 >= 95 - 5 keeps the 95 level.
      [{ index: 2, type: 'cleared', level: 100 }],
      // 90 is not below 95 - 5.
      [],
      [
        { index: 0, type: 'cleared', level: 80 },
        { index: 1, type: 'cleared', level: 95 },
      ],
    ]);
    expect(steps.map((step) => step.above)).toEqual([
      [true, false, false],
      [true, true, false],
      [true, true, true],
      [true, true, false],
      [true, true, false],
      [false, false, false],
    ]);
  });

  it('starts silently, above the levels usage already reaches', () => {
    expect(initialState({ at: [0.8, 0.95, 1] }, 96, 100)).toEqual([true, true, false]);
    expect(initialState({ at: [0.8] }, 96, null)).toEqual([false]);
  });

  it('crosses on a quota cut below usage, and clears when the quota is raised back', () => {
    const steps = eventsOf({ at: [0.8, 1] }, [at(45, 100), at(45, 50), at(45, 56), at(45, 100)]);
    expect(steps.map((step) => step.events)).toEqual([
      [{ index: 0, type: 'crossed', level: 40 }],
      // 0.8 × 56 = 44.8 is still reached by 45.
      [],
      // 45 < 80 - 5.
      [{ index: 0, type: 'cleared', level: 80 }],
    ]);
  });

  it('takes absolute levels as they are, with a band of h × level when there is no limit', () => {
    const levels = { quantities: [50, 90], hysteresis: 0.1 };
    const steps = eventsOf(levels, [0, 60, 46, 44, 95, 81, 80].map((u) => at(u, null)));
    expect(steps.map((step) => step.events)).toEqual([
      [{ index: 0, type: 'crossed', level: 50 }],
      [],
      [{ index: 0, type: 'cleared', level: 50 }],
      [
        { index: 0, type: 'crossed', level: 50 },
        { index: 1, type: 'crossed', level: 90 },
      ],
      [],
      [{ index: 1, type: 'cleared', level: 90 }],
    ]);
  });

  it('takes the band of an absolute level from the limit when there is one', () => {
    const steps = eventsOf({ quantities: [50], hysteresis: 0.1 }, [0, 60, 31, 29].map((u) => at(u, 200)));
    expect(steps.map((step) => step.events)).toEqual([
      [{ index: 0, type: 'crossed', level: 50 }],
      [],
      [{ index: 0, type: 'cleared', level: 50 }],
    ]);
  });

  it('keeps the state of fraction levels while there is no limit, and says nothing', () => {
    const steps = eventsOf({ at: [0.5] }, [at(0, 100), at(60, 100), at(0, null), at(100, null), at(0, 100)]);
    expect(steps).toEqual([
      { above: [true], events: [{ index: 0, type: 'crossed', level: 50 }] },
      { above: [true], events: [] },
      { above: [true], events: [] },
      { above: [false], events: [{ index: 0, type: 'cleared', level: 50 }] },
    ]);
    const below = eventsOf({ at: [0.5] }, [at(0, 100), at(0, null), at(100, null), at(60, 100)]);
    expect(below.map((step) => step.above)).toEqual([[false], [false], [true]]);
    expect(below[2]!.events).toEqual([{ index: 0, type: 'crossed', level: 50 }]);
  });

  it('clears at usage 0 even where the level less the band is not above 0', () => {
    const steps = eventsOf({ at: [0.02] }, [0, 3, 1, 0].map((u) => at(u, 100)));
    expect(steps.map((step) => step.events)).toEqual([
      [{ index: 0, type: 'crossed', level: 2 }],
      [],
      [{ index: 0, type: 'cleared', level: 2 }],
    ]);
  });

  it('never crosses at usage 0, so a limit of 0 alerts only on usage over it', () => {
    const steps = eventsOf({ at: [0.8, 1] }, [at(0, 0), at(0, 0), at(3, 0), at(0, 0)]);
    expect(steps.map((step) => step.events)).toEqual([
      [],
      [
        { index: 0, type: 'crossed', level: 0 },
        { index: 1, type: 'crossed', level: 0 },
      ],
      [
        { index: 0, type: 'cleared', level: 0 },
        { index: 1, type: 'cleared', level: 0 },
      ],
    ]);
  });

  it('refuses a state of the wrong length (a bug in the caller)', () => {
    expect(() => stepThresholds({ at: [0.8, 1] }, [false], 1, 100)).toThrow(/assertion failed/);
  });
});

describe('checkThresholdLevels', () => {
  it.each<[string, ThresholdLevels]>([
    ['fractions', { at: [0.8, 0.95, 1] }],
    ['quantities, no hysteresis', { quantities: [50, 90], hysteresis: 0 }],
    ['ten levels, the largest fraction and hysteresis', { at: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], hysteresis: 0.99 }],
  ])('accepts %s', (_what, levels) => {
    expect(checkThresholdLevels(levels)).toBeNull();
  });

  it.each<[string, ThresholdLevels, RegExp]>([
    ['both at and quantities', { at: [0.8], quantities: [5] }, /^exactly one of at and quantities/],
    ['neither', { hysteresis: 0.1 }, /^exactly one of at and quantities/],
    ['no fractions', { at: [] }, /^at must list at least one/],
    ['no quantities', { quantities: [] }, /^quantities must list at least one/],
    ['11 levels', { at: Array.from({ length: 11 }, (_, i) => (i + 1) / 10) }, /^at must list at most 10/],
    ['a fraction of 0', { at: [0] }, /^at\[0\] must be more than 0/],
    ['a quantity of 0', { quantities: [5, 0] }, /^quantities\[1\] must be an integer more than 0/],
    ['a negative fraction', { at: [0.5, -0.1] }, /^at\[1\]/],
    ['a negative quantity', { quantities: [-5] }, /^quantities\[0\]/],
    ['a NaN fraction', { at: [Number.NaN] }, /^at\[0\]/],
    ['a NaN quantity', { quantities: [Number.NaN] }, /^quantities\[0\]/],
    ['a fraction over 10', { at: [10.01] }, /^at\[0\] must be more than 0 and at most 10/],
    ['an infinite fraction', { at: [Number.POSITIVE_INFINITY] }, /^at\[0\]/],
    ['a fractional quantity', { quantities: [1.5] }, /^quantities\[0\]/],
    ['a duplicate fraction', { at: [0.8, 1, 0.8] }, /^at must not list a level twice/],
    ['a duplicate quantity', { quantities: [5, 5] }, /^quantities must not list a level twice/],
    ['hysteresis 1', { at: [0.8], hysteresis: 1 }, /^hysteresis must be at least 0 and less than 1/],
    ['hysteresis -0.1', { at: [0.8], hysteresis: -0.1 }, /^hysteresis/],
    ['hysteresis NaN', { quantities: [5], hysteresis: Number.NaN }, /^hysteresis/],
  ])('refuses %s', (_what, levels, message) => {
    expect(checkThresholdLevels(levels)).toMatch(message);
  });

  it('counts the levels of either form', () => {
    expect(levelCount({ at: [0.8, 1] })).toBe(2);
    expect(levelCount({ quantities: [5, 6, 7] })).toBe(3);
  });
});
