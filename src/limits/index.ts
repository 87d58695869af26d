/**
 * allot/limits: the limits mixin a host service embeds. See mixin.ts for how it works and the
 * README ("Limits in a host service") for a host in a few lines.
 */
export {
  openLimits,
  adoptLimits,
  LimitsMixin,
  type LimitsOptions,
  type LimitsTransaction,
  type Tracker,
  type Drift,
  type LimitsJournalEntry,
  type CountFunction,
  type Leftover,
} from './mixin.js';
export { LimitExceededError, LimitsUsageError, isLimitExceeded } from './errors.js';
export { limitsAdminRoutes, type LimitsAdminOptions } from './plugin.js';
export type { RegisteredTable } from './triggers.js';
export { openStore } from '../store/open.js';
export type { Store, Executor, Engine } from '../store/store.js';
