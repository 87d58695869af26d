/**
 * Assertions are for bugs, errors are for the world: a failed assertion means allot itself is
 * wrong (a broken invariant), never that a caller sent something bad. It throws loudly and the
 * API answers it with a generic 500 after rolling back the transaction it happened in.
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(`assertion failed: ${message}`);
}
