/**
 * Checks every concern's input checks share (ids, texts, quantities, lists of kinds); each
 * concern's own are in its folder (validate.ts). Checks on what library callers pass in. The HTTP API validates shapes with JSON Schema
 * first; these run for every caller, so the library refuses bad input just as the API does.
 */
import { descriptionLengthMax, displayNameLengthMax, kindsPerRequestMax, resourceIdLengthMax } from '../domain/constants.js';
import type { Line } from '../domain/decision.js';
import { invalid } from '../domain/errors.js';
import { parseQuantity } from '../domain/quantity.js';
import { freeTextProblem, idPattern, resourceIdProblem } from '../domain/text.js';
import type { LineInput } from './types.js';

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

export function checkLines(lines: readonly LineInput[]): Line[] {
  return checkKindList('allocations', lines, (line, field) => ({
    kind: line.kind,
    committed: checkQuantity(`${field}.committed`, line.committed ?? 0),
    reserved: checkQuantity(`${field}.reserved`, line.reserved ?? 0),
  }));
}

/** A non-empty, bounded list with one entry per kind. */
export function checkKindList<In extends { kind: string }, Out>(
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
