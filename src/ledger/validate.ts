/**
 * Checks on what library callers pass in. The HTTP API validates shapes with JSON Schema
 * first; these run for every caller, so the library refuses bad input just as the API does.
 */
import {
  descriptionLengthMax,
  displayNameLengthMax,
  holdTtlSecondsMax,
  holdTtlSecondsMin,
  kindsPerRequestMax,
  resourceIdLengthMax,
} from '../domain/constants.js';
import type { Line } from '../domain/decision.js';
import { invalid } from '../domain/errors.js';
import { parseQuantity } from '../domain/quantity.js';
import { freeTextProblem, idPattern, resourceIdProblem } from '../domain/text.js';
import type {
  AllocationInput,
  CheckedAllocationInput,
  CheckedHoldInput,
  CheckedLimitRegion,
  CheckedProjectQuotaInput,
  CheckedQuotaInput,
  ConfirmInput,
  HoldInput,
  LimitRegionInput,
  LineInput,
  QuantityInput,
  ProjectQuotaInput,
  QuotaInput,
} from './types.js';


export function checkId(field: string, value: unknown): string {
  if (typeof value !== 'string' || !idPattern.test(value)) {
    throw invalid(field, 'must match [a-z0-9][a-z0-9-]{0,62}');
  }
  return value;
}

export function checkText(field: string, value: unknown, lengthMax: number): string {
  if (typeof value !== 'string') throw invalid(field, `must be a string of at most ${lengthMax} characters`);
  const problem = freeTextProblem(value, lengthMax);
  if (problem !== null) throw invalid(field, problem);
  return value;
}

/** A referenced resource id (see domain/text.ts for the rule). */
export function checkResourceId(field: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(field, `must be a string of 1 to ${resourceIdLengthMax} characters`);
  const problem = resourceIdProblem(value);
  if (problem !== null) throw invalid(field, problem);
  return value;
}

export const checkDisplayName = (value: unknown) =>
  checkText('displayName', value, displayNameLengthMax);
export const checkDescription = (value: unknown) =>
  checkText('description', value, descriptionLengthMax);

export function checkQuantity(field: string, value: unknown): number {
  const parsed = parseQuantity(value);
  if (!parsed.ok) throw invalid(field, parsed.reason);
  return parsed.value;
}

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

export function checkHoldInput(input: HoldInput): CheckedHoldInput {
  const ttl = input?.ttlSeconds;
  if (!Number.isInteger(ttl) || ttl < holdTtlSecondsMin || ttl > holdTtlSecondsMax) {
    throw invalid('ttlSeconds', `must be an integer from ${holdTtlSecondsMin} to ${holdTtlSecondsMax}`);
  }
  return { ...checkAllocationInput(input), ttlSeconds: ttl };
}

export function checkConfirmInput(input: ConfirmInput | undefined): Line[] | undefined {
  return input?.allocations === undefined ? undefined : checkLines(input.allocations);
}

function checkLines(lines: readonly LineInput[]): Line[] {
  return checkKindList('allocations', lines, (line, field) => ({
    kind: line.kind,
    committed: checkQuantity(`${field}.committed`, line.committed ?? 0),
    reserved: checkQuantity(`${field}.reserved`, line.reserved ?? 0),
  }));
}

export function checkQuotaInputs(inputs: readonly QuotaInput[]): CheckedQuotaInput[] {
  return checkKindList('quotas', inputs, (item, field) => ({
    kind: item.kind,
    quantity: item.quantity === null ? null : checkQuantity(`${field}.quantity`, item.quantity),
  }));
}

export function checkProjectQuotaInputs(inputs: readonly ProjectQuotaInput[]): CheckedProjectQuotaInput[] {
  return checkKindList('quotas', inputs, (item, field) => {
    const cap = item.cap === undefined || item.cap === null ? null : checkQuantity(`${field}.cap`, item.cap);
    const guaranteed =
      item.guaranteed === undefined || item.guaranteed === null ? 0 : checkQuantity(`${field}.guaranteed`, item.guaranteed);
    // A guarantee the cap would never let the project use would only keep capacity idle.
    if (cap !== null && guaranteed > cap) throw invalid(`${field}.guaranteed`, `must not exceed cap (${cap})`);
    return { kind: item.kind, cap, guaranteed };
  });
}

/** A limit's regions: 1 to kindsPerRequestMax, each named once. */
/**
 * A limit's regions: 1 to kindsPerRequestMax, each named once, each with its limit — or, with
 * a global bound, none with a limit (the controller divides the bound among them).
 */
export function checkLimitRegions(
  regions: readonly LimitRegionInput[],
  global: QuantityInput | null | undefined,
): { regions: CheckedLimitRegion[]; global: number | null } {
  if (!Array.isArray(regions) || regions.length === 0 || regions.length > kindsPerRequestMax) {
    throw invalid('regions', `must list 1 to ${kindsPerRequestMax} regions`);
  }
  const bound = global === undefined || global === null ? null : checkQuantity('global', global);
  const seen = new Set<string>();
  const checked = regions.map((item, index) => {
    const region = checkId(`regions[${index}].region`, item?.region);
    if (seen.has(region)) throw invalid(`regions[${index}].region`, `region "${region}" is listed twice`);
    seen.add(region);
    if (bound !== null) {
      if (item.limit !== undefined) {
        throw invalid(`regions[${index}].limit`, 'a limit with a global bound has no per-region limits: the controller sets them');
      }
      return { region, limit: 0 };
    }
    return { region, limit: checkQuantity(`regions[${index}].limit`, item.limit) };
  });
  return { regions: checked, global: bound };
}

/** How the controller reaches a host: an http(s) base URL (no trailing slash) and a bearer token. */
export function checkHostInput(input: { endpoint: string; token: string }): { endpoint: string; token: string } {
  let url: URL;
  try {
    url = new URL(input?.endpoint);
  } catch {
    throw invalid('endpoint', 'must be an http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('endpoint', 'must be an http(s) URL');
  if (typeof input.token !== 'string' || !/^[\x21-\x7e]{1,4096}$/.test(input.token)) {
    throw invalid('token', 'must be 1 to 4096 visible ASCII characters');
  }
  return { endpoint: url.toString().replace(/\/$/, ''), token: input.token };
}

/** A project's regions: a primary, and 1 to kindsPerRequestMax enabled regions, each once. */
export function checkProjectRegionsInput(input: { primary: string; enabled: readonly string[] }): {
  primary: string;
  enabled: string[];
} {
  const primary = checkId('primary', input?.primary);
  if (!Array.isArray(input.enabled) || input.enabled.length === 0 || input.enabled.length > kindsPerRequestMax) {
    throw invalid('enabled', `must list 1 to ${kindsPerRequestMax} regions`);
  }
  const enabled = input.enabled.map((region, index) => checkId(`enabled[${index}]`, region));
  if (new Set(enabled).size !== enabled.length) throw invalid('enabled', 'lists a region twice');
  return { primary, enabled };
}

/** A non-empty, bounded list with one entry per kind. */
function checkKindList<In extends { kind: string }, Out>(
  field: string,
  items: readonly In[],
  checkItem: (item: In, field: string) => Out,
): Out[] {
  if (!Array.isArray(items) || items.length === 0 || items.length > kindsPerRequestMax) {
    throw invalid(field, `must list 1 to ${kindsPerRequestMax} kinds`);
  }
  const seen = new Set<string>();
  return items.map((item, index) => {
    const itemField = `${field}[${index}]`;
    const kind = checkId(`${itemField}.kind`, item?.kind);
    if (seen.has(kind)) throw invalid(`${itemField}.kind`, `kind "${kind}" is listed twice`);
    seen.add(kind);
    return checkItem(item, itemField);
  });
}
