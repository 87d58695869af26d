/**
 * The journal as a live feed, newest first: the last entries, then every new one as the
 * server streams it (server-sent events).
 */
import { useEffect, useState } from 'preact/hooks';
import type { JournalEntry } from '../../api.js';
import { ErrorNotice } from '../../components/Notice.js';
import { formatQuantity, formatTime, type KindFormat } from '../../format.js';
import { useLoad } from '../../hooks.js';
import type { Session } from '../../session.js';

/** How many entries the feed shows; older ones are in the journal API. */
const feedLength = 50;

export function JournalFeed(props: { session: Session; organization: string; onEntry: (entry: JournalEntry) => void }) {
  const [entries, setEntries] = useState<JournalEntry[]>([]);
  const [state, setState] = useState<'loading' | 'live' | 'reconnecting' | 'stopped'>('loading');
  const [error, setError] = useState<unknown>(null);
  const kinds = useLoad(() => props.session.client.kinds(), [props.session]);
  const formatOf = (kind: string): KindFormat => kinds.data?.items.find((k) => k.name === kind)?.format ?? 'decimal';
  useEffect(() => {
    let stop: (() => void) | null = null;
    let cancelled = false;
    setEntries([]);
    setState('loading');
    props.session.client.journalTail(props.organization, feedLength).then(
      (tail) => {
        if (cancelled) return;
        setEntries([...tail.items].reverse());
        // The numbers beside the feed may have been read before its newest entries were
        // committed: read them again once, so nothing between the two is missed (the stream
        // brings only what comes after the tail).
        const newest = tail.items.at(-1);
        if (newest) props.onEntry(newest);
        stop = props.session.client.watch(
          props.organization,
          tail.lastRevision,
          (entry) => {
            setEntries((current) => [entry, ...current].slice(0, feedLength));
            props.onEntry(entry);
          },
          setState,
          (refusal) => {
            setState('stopped');
            setError(refusal);
          },
        );
      },
      (caught: unknown) => !cancelled && setError(caught),
    );
    return () => {
      cancelled = true;
      stop?.();
    };
  }, [props.session, props.organization]);
  return (
    <section aria-labelledby="journal-heading" class="journal">
      <h2 id="journal-heading">
        Journal{' '}
        <span class={`status status-${state}`} role="status">
          {state === 'live' ? 'live' : state === 'reconnecting' ? 'reconnecting…' : state === 'stopped' ? 'stopped' : 'connecting…'}
        </span>
      </h2>
      <ErrorNotice error={error} />
      {/* Focusable: the feed scrolls, and a keyboard must be able to scroll it. */}
      <ol class="feed" aria-label="Journal entries, newest first" aria-live="polite" tabIndex={0}>
        {entries.map((entry) => (
          <li key={entry.revision}>
            <div>
              <span class="revision">#{entry.revision}</span> <strong>{entry.action}</strong>
              {entry.project ? <> in {entry.project}</> : null}
            </div>
            <div class="muted">
              {formatTime(entry.at)} by {entry.principal}
            </div>
            {entry.deltas.length > 0 ? (
              <div class="deltas">
                {entry.deltas
                  .map((delta) =>
                    [
                      delta.committed ? `committed ${signed(delta.committed, formatOf(delta.kind))}` : '',
                      delta.reserved ? `reserved ${signed(delta.reserved, formatOf(delta.kind))}` : '',
                      delta.held ? `held ${signed(delta.held, formatOf(delta.kind))}` : '',
                    ]
                      .filter(Boolean)
                      .map((part) => `${delta.kind} ${part}`)
                      .join(', '),
                  )
                  .filter(Boolean)
                  .join('; ')}
              </div>
            ) : null}
          </li>
        ))}
      </ol>
      {entries.length === 0 && state !== 'loading' ? <p class="muted">No changes yet.</p> : null}
    </section>
  );
}

const signed = (value: number, format: KindFormat) => `${value > 0 ? '+' : '−'}${formatQuantity(Math.abs(value), format)}`;
