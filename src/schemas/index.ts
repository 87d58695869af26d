/** Every schema of the HTTP API, one file per resource (see common.ts). */
export * from './common.js';
export * from './problem.js';
export * from './kinds.js';
export * from './tenants.js';
export * from './quotas.js';
export * from './allocations.js';
export * from './batch.js';
export * from './journal.js';
export * from './limits.js';
export * from './regions.js';
export * from './history.js';
export * from './tokens.js';
export * from './subscriptions.js';
export * from './requests.js';
