/** A limit's regions, a host's endpoint and token, a project's regions. */
import { kindsPerRequestMax } from '../../domain/constants.js';
import { invalid } from '../../domain/errors.js';
import type { CheckedLimitRegion, LimitRegionInput, QuantityInput } from '../types.js';
import { checkId, checkQuantity } from '../validate.js';

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
