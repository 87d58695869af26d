import { limitExceededMarker } from '../store/limit-triggers.js';

/**
 * A write would take a tracker over its limit: the whole transaction, the host's own rows
 * included, was rolled back.
 */
export class LimitExceededError extends Error {
  override name = 'LimitExceededError';

  constructor(
    readonly resourceType: string,
    readonly project: string,
    readonly region: string,
    readonly limit: number,
    readonly used: number,
    readonly requested: number,
    /** False when no tracker exists for the project and type: it has no capacity yet. */
    readonly tracked = true,
    options?: { cause?: unknown },
  ) {
    super(
      tracked
        ? `limit exceeded for ${resourceType} in project ${project} (region ${region}): ` +
            `${used} used + ${requested} requested > ${limit}`
        : `no limit is set for ${resourceType} in project ${project} (region ${region}): nothing can be created`,
      options,
    );
  }
}

/**
 * Whether `error` — from any client the host uses (pg, better-sqlite3, Kysely, Drizzle, or the
 * mixin's own transaction), wrapped or not — is a refusal by the limits triggers. Returns it as
 * a LimitExceededError (the type, project, region, limit, used and requested), or undefined.
 */
export function isLimitExceeded(error: unknown): LimitExceededError | undefined {
  for (let current = error, depth = 0; current instanceof Object && depth < 8; depth += 1) {
    if (current instanceof LimitExceededError) return current;
    const message = (current as { message?: unknown }).message;
    const at = typeof message === 'string' ? message.indexOf(limitExceededMarker) : -1;
    if (at >= 0) {
      try {
        const d = JSON.parse((message as string).slice(at + limitExceededMarker.length)) as Record<string, unknown>;
        return new LimitExceededError(
          String(d.resourceType),
          String(d.project),
          String(d.region),
          Number(d.limit),
          Number(d.used),
          Number(d.requested),
          d.tracked !== false,
          { cause: error },
        );
      } catch {
        return undefined;
      }
    }
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A mixin call named something that is not there, or was given bad input. */
export class LimitsUsageError extends Error {
  override name = 'LimitsUsageError';

  constructor(
    readonly code: 'not-found' | 'invalid-request',
    message: string,
  ) {
    super(message);
  }
}
