/** Loading state for one request, re-run when its inputs change; stale answers are dropped. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload(): void;
}

export function useLoad<T>(load: () => Promise<T>, inputs: readonly unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const started = useRef(0);
  const shown = useRef(0);
  useEffect(() => {
    const run = ++started.current;
    setState((previous) => ({ ...previous, loading: true }));
    // Any answer newer than the one shown is shown: under a stream of reloads (a busy
    // organization) waiting for the latest one would keep old numbers on screen.
    // A failed reload keeps what is shown (with the error beside it): a passing 503 must not
    // take a table, or an editor open in it, off the screen.
    const settle = (next: { ok: true; data: T } | { ok: false; error: unknown }) => {
      if (run <= shown.current) return;
      shown.current = run;
      setState((previous) => ({
        data: next.ok ? next.data : previous.data,
        error: next.ok ? null : next.error,
        loading: run !== started.current,
      }));
    };
    load().then(
      (data) => settle({ ok: true, data }),
      (error: unknown) => settle({ ok: false, error }),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...inputs, tick]);
  const reload = useCallback(() => setTick((value) => value + 1), []);
  return { ...state, reload };
}

/** `value`, once it has stopped changing for `ms`: a filter typed letter by letter asks once. */
export function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

/** The location hash as a path (`#/o/acme/history` → `/o/acme/history`). */
export function useHashPath(): string {
  const read = () => {
    const raw = window.location.hash.replace(/^#/, '');
    try {
      return decodeURI(raw) || '/';
    } catch {
      return raw; // A malformed escape (#/o/%E0%A4%A) is shown as typed, on the not-found page.
    }
  };
  const [path, setPath] = useState(read);
  useEffect(() => {
    const onChange = () => setPath(read());
    window.addEventListener('hashchange', onChange);
    // Effects run after the first paint: a hash changed between the first read and this
    // listener (a link followed right after signing in) fired no event we heard.
    onChange();
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return path;
}
