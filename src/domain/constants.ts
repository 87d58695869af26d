/**
 * Every bound in allot, in one place. Names put the bound last (`…Max`, `…Min`).
 * The relations between them are asserted when this module loads.
 */
import { assert } from './assert.js';

/** The version of the API and the command. */
export const apiVersion = '0.1.0';

/** The largest quantity that JSON numbers and JavaScript integers carry exactly. */
export const quantityMax = Number.MAX_SAFE_INTEGER;
/** Kinds in one allocation or one quota update. */
export const kindsPerRequestMax = 64;
/** Page size for every list. */
export const pageSizeDefault = 100;
export const pageSizeMax = 1000;
/**
 * The most items of a page that each carry a set of their own (an organization with its
 * quotas, a project with all its limits): their answer grows with what each holds.
 */
export const pageOfSetsMax = 100;
/** HTTP request bodies. */
export const bodyBytesMax = 1024 * 1024;
/** Free-text fields (display names, descriptions). */
export const displayNameLengthMax = 255;
export const descriptionLengthMax = 4096;
/** Ids of organizations, projects and kinds: `[a-z0-9][a-z0-9-]{0,62}`. */
export const idLengthMax = 63;
/** Referenced resource ids (the consumer's own id space, so any printable text). */
export const resourceIdLengthMax = 255;
/** Hold lifetimes. */
export const holdTtlSecondsMin = 1;
export const holdTtlSecondsMax = 7 * 24 * 60 * 60;
/**
 * Expired holds one decision resolves before it decides. More would only be counted a little
 * longer (until the sweeper or a later decision resolves them): over-counting can deny, never
 * overcommit.
 */
export const expiredHoldsPerDecisionMax = 1000;
/** Expired holds the background sweeper resolves per pass, and how often it runs. */
export const sweepHoldsPerPassMax = 1000;
export const sweepIntervalMs = 1000;
/** Journal entries per page and per server-sent-events poll. */
export const journalPageSizeMax = 1000;
export const watchPollIntervalMs = 250;
/** Server-sent-event streams open at once in one process, and per principal in one process. */
export const watchersMax = 1000;
export const watchersPerPrincipalMaxDefault = 16;
/** Idempotency keys: length, how long responses are kept, and how long a retry waits. */
export const idempotencyKeyLengthMax = 255;
export const idempotencyRetentionMs = 24 * 60 * 60 * 1000;
export const idempotencyWaitMsMax = 10_000;
export const idempotencyPollIntervalMs = 20;
/**
 * A claimed key whose request has not finished in this time is taken over by a retry (its
 * process most likely died). Safe even if the first is still running: it then fails to store
 * its response and rolls back. Far above any transaction's time with all its retries.
 */
export const idempotencyClaimStaleMs = 15_000;
/**
 * After this process changes an organization, its reads stay on the primary this long (a
 * replica's lag is expected far below it), and at most this many organizations are tracked.
 */
export const replicaFreshMs = 10_000;
/** How long a new PostgreSQL connection may take before its host is passed over. */
export const postgresConnectTimeoutMs = 5_000;
export const replicaFreshOrganizationsMax = 100_000;
/** How often a claim whose request failed with the database away is given up again, until it answers. */
export const claimReleaseRetryMs = 250;
/** Failed authentications from one address in a minute before it is refused (429). */
export const authFailuresPerMinuteMax = 30;
/**
 * A credential that authenticated in this process within this time is still checked from an
 * address over its failure budget (it is not a guess), and at most this many are remembered.
 */
export const knownCredentialRetentionMs = 24 * 60 * 60 * 1000;
export const knownCredentialsMax = 10_000;
/**
 * The bootstrap admin token is chosen by the operator. At this length or more (the generated
 * one has 32 characters of 6 bits) it is treated as unguessable; a shorter one stays behind
 * the failure limit until it has worked once in this process.
 */
export const strongAdminTokenLengthMin = 32;
/** How long an API token lookup is trusted: a revocation elsewhere takes effect within this. */
export const authCacheTtlMs = 2000;
/** How often a long-lived response asks whether its credential still stands. */
export const streamRecheckIntervalMs = 2000;
/** HTTP timeouts: to receive a request's headers, the whole request, and between requests. */
export const headersTimeoutMsDefault = 10_000;
export const requestTimeoutMsDefault = 30_000;
export const idleTimeoutMsDefault = 10_000;
/** How deeply JSON bodies may nest. */
export const jsonDepthMax = 32;
/**
 * Group commit: the most operations one group decides (a batch counts each of its operations;
 * one larger than this runs alone), the most decisions waiting in a process before new ones
 * are refused (503), and how often a group runs again after losing a race it only learns of
 * when it writes (a referenced resource or an idempotency key taken by another process).
 * Groups never wait for company: one starts as soon as the previous one has committed.
 */
export const groupOperationsMax = 2048;
export const groupQueueMax = 20_000;
export const groupRetriesMax = 5;
/** PostgreSQL groups in flight per process, each for its own organizations. */
export const groupPipelinesPostgres = 2;
/** Operations in one batch request. */
export const batchOperationsMax = 1000;
/** Retries of a transaction that failed on a serialization failure or deadlock. */
export const transactionRetriesMax = 8;
export const transactionBackoffMsMin = 2;
export const transactionBackoffMsMax = 200;
/** PostgreSQL connections per server process. */
export const postgresPoolSizeMax = 16;
/** How long SQLite waits for another process's write lock before failing. */
export const sqliteBusyTimeoutMs = 10_000;
/**
 * Organizations whose quotas and limits keep series of their own in /metrics (the most
 * utilized); the others are summed per kind into `organization="_other"`, so a scrape's size
 * and the monitoring system's series stay bounded however many organizations there are.
 */
export const metricsOrganizationsDefault = 100;
export const metricsOrganizationsMax = 100_000;

assert(watchersPerPrincipalMaxDefault <= watchersMax, 'a principal may not have more streams than the process');
assert(headersTimeoutMsDefault <= requestTimeoutMsDefault, 'headers arrive within the request time');
assert(authCacheTtlMs <= streamRecheckIntervalMs * 2, 'a revoked token must end its streams within a few seconds');
assert(batchOperationsMax <= groupOperationsMax, 'a batch fits in a group');
assert(pageSizeDefault <= pageSizeMax, 'pageSizeDefault must not exceed pageSizeMax');
assert(holdTtlSecondsMin < holdTtlSecondsMax, 'hold ttl bounds inverted');
assert(idempotencyWaitMsMax < idempotencyClaimStaleMs, 'a waiting retry must give up before it could take over');
assert(idempotencyPollIntervalMs < idempotencyWaitMsMax, 'idempotency poll interval too long');
assert(transactionBackoffMsMin < transactionBackoffMsMax, 'backoff bounds inverted');
assert(kindsPerRequestMax * quantityMax > quantityMax, 'kindsPerRequestMax must be positive');

/** How often the limits controller reconciles, by default. */
export const controllerIntervalMs = 2000;
/** A region host the controller has not reached for this long is reported stale. */
export const hostStaleAfterMs = 30_000;
/** How long the controller waits for a host service's answer. */
export const hostRequestTimeoutMs = 5000;

/** How often usage is sampled into the history, by default. */
export const historySampleIntervalMs = 60_000;
/** Raw samples are kept this long; hourly highs, much longer. */
export const historyRawRetentionMs = 7 * 24 * 60 * 60 * 1000;
export const historyHourlyRetentionMs = 400 * 24 * 60 * 60 * 1000;
/** The most points one history answer has. */
export const historyPointsMax = 10_000;
