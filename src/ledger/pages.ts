/** Opaque cursors for keyset pagination: the last key of a page, base64url-encoded. */
import { pageSizeDefault, pageSizeMax } from '../domain/constants.js';
import { invalid } from '../domain/errors.js';
import type { Page, PageRequest } from './types.js';

export function pageSize(request: PageRequest): number {
  const limit = request.limit ?? pageSizeDefault;
  if (!Number.isInteger(limit) || limit < 1 || limit > pageSizeMax) {
    throw invalid('limit', `must be an integer from 1 to ${pageSizeMax}`);
  }
  return limit;
}

export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null;
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const after = (decoded as { after?: unknown } | null)?.after;
    // Keys are ids: printable, bounded. Anything else was not made here.
    if (typeof after === 'string' && /^[\x20-\x7e]{1,255}$/.test(after)) return after;
  } catch {
    // Falls through to the error below: a cursor is either one we made or invalid.
  }
  throw invalid('cursor', 'is not a cursor this server returned');
}

/** Builds a page from `limit + 1` rows: the extra row only says whether there is more. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (item: T) => string): Page<T> {
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  const nextCursor =
    rows.length > limit && last !== undefined
      ? Buffer.from(JSON.stringify({ after: keyOf(last) })).toString('base64url')
      : null;
  return { items, nextCursor };
}
