/**
 * Usage of one kind over time, from the history the controller samples. Drag across the
 * chart to select a range: it is read again from the server for that range, in finer steps.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { HistorySeries } from '../api.js';
import { Empty, ErrorNotice, Loading } from '../components/Notice.js';
import { formatQuantity, formatTime, type KindFormat } from '../format.js';
import { useLoad } from '../hooks.js';
import type { Session } from '../session.js';
import { OrganizationFrame } from './Organization.js';

const hour = 3_600_000;
const decimalIncrements = Array.from({ length: 16 }, (_, exponent) => [1, 2, 5].map((base) => base * 10 ** exponent)).flat();
const binaryIncrements = Array.from({ length: 61 }, (_, exponent) => 2 ** exponent);
const ranges = [
  ['1 hour', hour],
  ['24 hours', 24 * hour],
  ['7 days', 7 * 24 * hour],
  ['30 days', 30 * 24 * hour],
] as const;

interface Range {
  from: number;
  to: number;
  /** Chosen by dragging on the chart, rather than from the buttons. */
  selected: boolean;
}

export function HistoryView({ session, organization }: { session: Session; organization: string }) {
  const quotas = useLoad(() => session.client.quotas(organization), [session, organization]);
  const kinds = quotas.data?.body.quotas ?? [];
  const [kind, setKind] = useState<string | null>(null);
  const chosen = kind ?? kinds[0]?.kind ?? null;
  // The chart's format follows the series it shows (until the new kind's series arrives, the
  // old one stays on screen, in its own format).
  const formatOf = (kind: string | null | undefined): KindFormat => kinds.find((quota) => quota.kind === kind)?.format ?? 'decimal';
  const [range, setRange] = useState<Range>(() => ({ from: Date.now() - 24 * hour, to: Date.now(), selected: false }));
  const history = useLoad(
    () =>
      chosen === null
        ? Promise.resolve(undefined)
        : session.client.history(organization, {
            kind: chosen,
            from: new Date(range.from).toISOString(),
            to: new Date(range.to).toISOString(),
          }),
    [session, organization, chosen, range.from, range.to],
  );
  return (
    <OrganizationFrame session={session} organization={organization} current="history">
      {() => (
        <section aria-labelledby="history-heading">
          <h2 id="history-heading">Usage over time</h2>
          <ErrorNotice error={quotas.error} />
          <div class="toolbar">
            <label for="history-kind">Kind</label>
            <select id="history-kind" value={chosen ?? ''} onChange={(event) => setKind(event.currentTarget.value)}>
              {kinds.map((quota) => (
                <option key={quota.kind} value={quota.kind}>
                  {quota.displayName}
                </option>
              ))}
            </select>
            <span role="group" aria-label="Range" class="buttons">
              {ranges.map(([label, span]) => (
                <button
                  key={label}
                  type="button"
                  aria-pressed={!range.selected && Math.abs(range.to - range.from - span) < 1000}
                  onClick={() => setRange({ from: Date.now() - span, to: Date.now(), selected: false })}
                >
                  Last {label}
                </button>
              ))}
            </span>
          </div>
          <p class="muted">
            {formatTime(new Date(range.from).toISOString())} to {formatTime(new Date(range.to).toISOString())}
            {history.data ? `, one point per ${history.data.stepSeconds} s (each the step's highest usage)` : ''}.
            {range.selected ? ' Selected on the chart.' : ' Drag across the chart to select a range.'}
          </p>
          <ErrorNotice error={history.error} />
          {history.data === undefined ? (
            history.loading ? <Loading what="the history" /> : null
          ) : history.data.points.length === 0 ? (
            <Empty>
              No samples in this range. The limits controller samples usage (<code>allot serve --controller</code> or{' '}
              <code>allot controller</code>).
            </Empty>
          ) : (
            <Chart
              series={history.data}
              format={formatOf(history.data.series.replace(/^quota:/, ''))}
              from={range.from}
              to={range.to}
              onSelect={(from, to) => setRange({ from: Math.max(from, range.from), to: Math.min(to, range.to), selected: true })}
            />
          )}
        </section>
      )}
    </OrganizationFrame>
  );
}

function Chart(props: {
  series: HistorySeries;
  format: KindFormat;
  /** The range asked for (ms): the x axis spans it whatever the samples cover. */
  from: number;
  to: number;
  onSelect: (from: number, to: number) => void;
}) {
  const { series, format, from, to, onSelect } = props;
  const box = useRef<HTMLDivElement>(null);
  const onSelectRef = useRef(onSelect);
  onSelectRef.current = onSelect;
  const data = useMemo<uPlot.AlignedData>(
    () => [
      series.points.map((point) => Date.parse(point.at) / 1000),
      series.points.map((point) => point.used),
      series.points.map((point) => point.quantity),
    ],
    [series],
  );
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const fmt = (value: number | null) => formatQuantity(value, format);
    const plot = new uPlot(
      {
        width: Math.max(320, element.clientWidth),
        height: 320,
        cursor: { drag: { x: true, y: false, setScale: false } },
        scales: {
          x: { time: true, range: () => [from / 1000, to / 1000] },
          y: { range: (_u, min, max) => [0, Math.max(max * 1.1, min + 1)] },
        },
        // Whole units only: 1, 2, 5 × 10ⁿ for counts, powers of two for bytes.
        axes: [{}, { values: (_u, ticks) => ticks.map((tick) => fmt(tick)), size: 80, incrs: format === 'binary' ? binaryIncrements : decimalIncrements }],
        series: [
          {},
          // Points too, so a range with a single sample still shows it.
          { label: 'Used', stroke: '#1f5fbf', width: 2, fill: 'rgba(31, 95, 191, 0.12)', points: { show: true, size: 6 }, value: (_u, v, _s, index) => (index === null ? '—' : fmt(v)) },
          { label: 'Quota', stroke: '#b42318', width: 2, dash: [6, 4], value: (_u, v, _s, index) => (index === null ? '—' : fmt(v)) },
        ],
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 4) return;
              const from = u.posToVal(u.select.left, 'x');
              const to = u.posToVal(u.select.left + u.select.width, 'x');
              u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
              onSelectRef.current(Math.round(from * 1000), Math.round(to * 1000));
            },
          ],
        },
      },
      data,
      element,
    );
    const onResize = () => plot.setSize({ width: Math.max(320, element.clientWidth), height: 320 });
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      plot.destroy();
    };
  }, [data, format, from, to]);
  const peak = series.points.reduce((best, point) => (point.used > best.used ? point : best), series.points[0]!);
  return (
    <figure class="chart">
      <div ref={box} role="img" aria-label={`Usage of ${series.series.replace(/^quota:/, '')} over the range; highest ${formatQuantity(peak.used, format)} at ${formatTime(peak.at)}`} />
      <figcaption class="muted">
        Highest: {formatQuantity(peak.used, format)} at {formatTime(peak.at)}. Latest: {formatQuantity(series.points.at(-1)!.used, format)}.
      </figcaption>
    </figure>
  );
}
