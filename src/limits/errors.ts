/**
 * A limits transaction would take a tracker over its limit: the whole transaction, the host's
 * own rows included, was rolled back.
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
  ) {
    super(
      tracked
        ? `limit exceeded for ${resourceType} in project ${project} (region ${region}): ` +
            `${used} used + ${requested} requested > ${limit}`
        : `no limit is set for ${resourceType} in project ${project} (region ${region}): nothing can be created`,
    );
  }
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
