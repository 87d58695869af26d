/**
 * Keyset paging: the server hands a cursor for the next page; going back pops the cursors
 * kept on the way. Nothing counts or loads every row.
 */
import { useState } from 'preact/hooks';

export interface Paging {
  cursor: string | undefined;
  page: number;
  next(cursor: string): void;
  previous(): void;
  reset(): void;
}

export function usePaging(): Paging {
  const [stack, setStack] = useState<(string | undefined)[]>([undefined]);
  return {
    cursor: stack[stack.length - 1],
    page: stack.length,
    next: (cursor) => setStack([...stack, cursor]),
    previous: () => setStack(stack.length > 1 ? stack.slice(0, -1) : stack),
    reset: () => setStack([undefined]),
  };
}

export function Pager({ paging, nextCursor, label }: { paging: Paging; nextCursor: string | null; label: string }) {
  return (
    <nav class="pager" aria-label={`${label} pages`}>
      <button type="button" onClick={paging.previous} disabled={paging.page === 1}>
        Previous
      </button>
      <span>Page {paging.page}</span>
      <button type="button" onClick={() => nextCursor && paging.next(nextCursor)} disabled={nextCursor === null}>
        Next
      </button>
    </nav>
  );
}
