/** An allocation's input and an allocation listing's filters, as the library and the API take them. */
import type { AllocationInput, CheckedAllocationInput } from '../types.js';
import { checkId, checkLines, checkResourceId } from '../validate.js';

export function checkAllocationInput(input: AllocationInput): CheckedAllocationInput {
  checkId('resource.kind', input?.resource?.kind);
  const resourceId = checkResourceId('resource.id', input.resource.id);
  const lines = checkLines(input.allocations);
  return { resource: { kind: input.resource.kind, id: resourceId }, allocations: lines };
}

/** The filters of an allocation listing: each, when given, as it would be stored. */
export function checkAllocationFilter<F extends { project?: string; resourceKind?: string; resourceId?: string }>(filter: F): F {
  if (filter.project !== undefined) checkId('project', filter.project);
  if (filter.resourceKind !== undefined) checkId('resourceKind', filter.resourceKind);
  if (filter.resourceId !== undefined) checkResourceId('resourceId', filter.resourceId);
  return filter;
}
