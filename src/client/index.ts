/**
 * `allot/client`: a small typed client of allot's HTTP API, typed from the OpenAPI document the
 * server serves (schema.ts, generated), with refusals as typed errors, idempotency keys and
 * retries built in, and read-modify-write under ETags. See docs/client.md.
 */
export {
  createClient,
  readModifyWrite,
  type AllotClient,
  type Answer,
  type Call,
  type ClientOptions,
  type PathsWith,
  type ReadData,
  type UpdateOptions,
  type VersionedPath,
  type WriteBody,
} from './client.js';
export { AllotProblem, type ProblemCode, type ProblemDocument, type ProblemExtensions } from './problem.js';
export { retryingFetch, type Fetch, type RetryOptions } from './retry.js';
export { routes, type RouteName } from './routes.js';
export type { components, paths } from './schema.js';
