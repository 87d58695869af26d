/**
 * The pure rule for usage threshold alerts: when a level is crossed and when it is cleared
 * again, with hysteresis, so usage hovering just below a level alerts once and not on every
 * change. No I/O: the caller keeps each level's `above` flag and sends `threshold.crossed` and
 * `threshold.cleared` for the events.
 */
import { assert } from './assert.js';

/** Levels in one threshold set, and the largest fraction of the limit a level may be. */
export const thresholdLevelsMax = 10;
export const thresholdFractionMax = 10;
/** The hysteresis when a set gives none, as a fraction of the limit. */
export const hysteresisDefault = 0.05;

/**
 * The levels of one threshold set, for one kind and scope: fractions of the limit (`at`) or
 * absolute quantities, exactly one of the two; and the hysteresis, a fraction of the limit (of
 * the level itself for an absolute level with no limit).
 */
export interface ThresholdLevels {
  at?: readonly number[];
  quantities?: readonly number[];
  hysteresis?: number;
}

/** One level crossed or cleared by a step; `level` is the level as a quantity at `limit`. */
export interface ThresholdEvent {
  index: number;
  type: 'crossed' | 'cleared';
  level: number;
  usage: number;
  limit: number | null;
}

/** Why a threshold set is invalid, naming the field; null if it is valid. */
export function checkThresholdLevels(levels: ThresholdLevels): string | null {
  const { at, quantities, hysteresis = hysteresisDefault } = levels;
  if ((at === undefined) === (quantities === undefined)) {
    return 'exactly one of at and quantities must be given';
  }
  const field = at !== undefined ? 'at' : 'quantities';
  const values = at ?? quantities ?? [];
  if (values.length === 0) return `${field} must list at least one level`;
  if (values.length > thresholdLevelsMax) {
    return `${field} must list at most ${thresholdLevelsMax} levels`;
  }
  for (const [index, value] of values.entries()) {
    // Absolute levels are quantities, so integers like every quantity in allot.
    const valid =
      field === 'at'
        ? Number.isFinite(value) && value > 0 && value <= thresholdFractionMax
        : Number.isSafeInteger(value) && value > 0;
    if (!valid) {
      const expected =
        field === 'at' ? `more than 0 and at most ${thresholdFractionMax}` : 'an integer more than 0';
      return `${field}[${index}] must be ${expected}, not ${value}`;
    }
  }
  if (new Set(values).size !== values.length) return `${field} must not list a level twice`;
  if (!(Number.isFinite(hysteresis) && hysteresis >= 0 && hysteresis < 1)) {
    return `hysteresis must be at least 0 and less than 1, not ${hysteresis}`;
  }
  return null;
}

export function levelCount(levels: ThresholdLevels): number {
  return (levels.at ?? levels.quantities ?? []).length;
}

/** Each level as a quantity at `limit`; null for a fraction with no limit to be a fraction of. */
function levelsAt(levels: ThresholdLevels, limit: number | null): (number | null)[] {
  if (levels.at !== undefined) return levels.at.map((at) => (limit === null ? null : at * limit));
  return [...(levels.quantities ?? [])];
}

/**
 * Usage reaches a level at or above it, but never when it is 0: a limit of 0 makes every
 * fraction level 0, and a kind an organization may not use is no alert (and would flap against
 * the clearing at 0).
 */
function reaches(usage: number, level: number): boolean {
  return usage > 0 && usage >= level;
}

/** Where each level stands at the start, without events: a new set does not alert at once. */
export function initialState(levels: ThresholdLevels, usage: number, limit: number | null): boolean[] {
  return levelsAt(levels, limit).map((level) => level !== null && reaches(usage, level));
}

/**
 * One step to `usage` at `limit`, from `above` (not changed). A level crosses when usage
 * reaches it; it clears only once usage falls below it by more than the hysteresis, or to 0,
 * so usage between the two keeps it as it is. A change of limit is a step like any other: a
 * cut below usage crosses, a raise far above it clears. A fraction level with no limit is
 * inactive: it keeps its state and says nothing. Events come in the order of the levels.
 */
export function stepThresholds(
  levels: ThresholdLevels,
  above: readonly boolean[],
  usage: number,
  limit: number | null,
): { above: boolean[]; events: ThresholdEvent[] } {
  assert(above.length === levelCount(levels), 'one above flag per threshold level');
  assert(usage >= 0 && (limit === null || limit >= 0), 'usage and limit are quantities');
  const hysteresis = levels.hysteresis ?? hysteresisDefault;
  const next = [...above];
  const events: ThresholdEvent[] = [];
  for (const [index, level] of levelsAt(levels, limit).entries()) {
    if (level === null) continue;
    const was = next[index] === true;
    const band = hysteresis * (limit ?? level);
    const now = was ? !(usage < level - band || usage <= 0) : reaches(usage, level);
    if (now === was) continue;
    next[index] = now;
    events.push({ index, type: now ? 'crossed' : 'cleared', level, usage, limit });
  }
  return { above: next, events };
}
