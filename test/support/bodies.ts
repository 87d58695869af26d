/**
 * Request bodies and response rows the API and CLI tests build and read the same way: an
 * allocation or hold of a `vm` resource, and one kind's row of a quotas response.
 */
import { expect } from 'vitest';

/** The body of an allocation of the `vm` resource `id`, with the given lines. */
export const allocation = (id: string, allocations: unknown[]) => ({ resource: { kind: 'vm', id }, allocations });

/** The body of a hold of the `vm` resource `id`, with the given lines, for an hour unless told. */
export const hold = (id: string, allocations: unknown[], ttlSeconds = 3600) => ({
  resource: { kind: 'vm', id },
  allocations,
  ttlSeconds,
});

/** The row of `kind` in a quotas response (an organization's or a project's); fails if absent. */
export const rowOf = (body: any, kind: string): any => {
  const row = (body.quotas as any[]).find((quota) => quota.kind === kind);
  expect(row, `quota row of ${kind}`).toBeDefined();
  return row;
};
