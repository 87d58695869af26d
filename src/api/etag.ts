/**
 * Generations as HTTP entity tags. An ETag is the generation in quotes (`"3"`); `If-Match`
 * takes one such tag, or `*` (any current version). A stale tag is answered with 412 by the
 * ledger, inside the transaction that would have made the change.
 */
import type { FastifyRequest } from 'fastify';
import { invalid } from '../domain/errors.js';

export const etagOf = (generation: number) => `"${generation}"`;

/** The generation `If-Match` asks for, or undefined when it is absent or `*`. */
export function ifMatchOf(request: FastifyRequest): number | undefined {
  return generationOf(request.headers['if-match'], 'If-Match');
}

/** The generation an If-Match value names (undefined: absent or `*`); `field` names it in a refusal. */
export function generationOf(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value.trim() === '*') return undefined;
  // Exactly as sent in ETag: "01" is not "1".
  const match = /^\s*"(0|[1-9][0-9]{0,14})"\s*$/.exec(value);
  if (!match) throw invalid(field, 'must be one entity tag as sent in ETag (e.g. "3"), or *');
  return Number(match[1]);
}
