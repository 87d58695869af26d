/**
 * One kind's usage against its limit as a stacked bar: committed, reserved, held, free, and
 * anything over the limit in the warning colour (striped too, so it does not rest on colour
 * alone). The whole bar is one image with a sentence for screen readers. Alert levels (a
 * webhook's thresholds) are ticks across it, and listed in that sentence.
 */
import { exactly, formatQuantity, type KindFormat } from '../format.js';

export interface BarValues {
  /** The limit: a quota or a cap; null: unlimited. */
  limit: number | null;
  committed: number;
  reserved: number;
  held: number;
  format: KindFormat;
  label: string;
  /** Levels that send an alert when crossed, in ascending order. */
  alerts?: readonly Alert[];
}

export interface Alert {
  /** Of the limit: 0.8 is at 80 % of it. */
  fraction: number;
  /** How the level was set: "80 %", or a quantity. */
  label: string;
}

export function UsageBar(values: BarValues) {
  const { limit, committed, reserved, held, format, label, alerts = [] } = values;
  const used = committed + reserved + held;
  const over = limit !== null && used > limit ? used - limit : 0;
  const scale = Math.max(limit ?? used, used, 1);
  // Within the limit, the stack fills committed, then reserved, then held; the rest is over.
  let room = limit ?? Number.POSITIVE_INFINITY;
  const within = (value: number) => {
    const shown = Math.min(value, room);
    room -= shown;
    return shown;
  };
  // Unlimited: there is nothing to measure against, so no fill (the stripes and the caption
  // say it); a bar full of usage would read as a quota used up.
  const segments = limit === null ? [] : [
    { name: 'committed', value: within(committed) },
    { name: 'reserved', value: within(reserved) },
    { name: 'held', value: within(held) },
    { name: 'free', value: limit === null ? 0 : Math.max(0, limit - used) },
    { name: 'over', value: over },
  ];
  const fmt = (value: number | null) => formatQuantity(value, format);
  const summary =
    `${label}: ${fmt(used)} used of ${fmt(limit)}` +
    ` (committed ${fmt(committed)}, reserved ${fmt(reserved)}, held ${fmt(held)})` +
    (over > 0 ? `, over the limit by ${fmt(over)}` : limit === null ? '' : `, ${fmt(limit - used)} free`) +
    (alerts.length > 0 ? `; alerts at ${alerts.map((alert) => alert.label).join(', ')}` : '');
  return (
    <div class={`usage${over > 0 ? ' usage-over' : ''}${limit === null ? ' usage-unlimited' : ''}`}>
      <div class="bar" role="img" aria-label={summary} title={`${summary} — exactly ${exactly(used)} of ${exactly(limit)}`}>
        {segments.map((segment) =>
          segment.value > 0 ? (
            <span key={segment.name} class={`segment segment-${segment.name}`} style={{ width: `${(segment.value / scale) * 100}%` }} />
          ) : null,
        )}
        {limit === null ? null : alerts.map((alert) => <AlertTick key={alert.fraction} at={(alert.fraction * limit) / scale} />)}
      </div>
      <div class="bar-caption" aria-hidden="true">
        {fmt(used)} / {fmt(limit)}
        {over > 0 ? <strong class="warning-text"> over by {fmt(over)}</strong> : null}
      </div>
    </div>
  );
}

/** A tick at `at` of the bar's width, kept inside it; a level beyond the bar is only listed. */
function AlertTick({ at }: { at: number }) {
  if (at > 1) return null;
  return <span class="tick" style={{ left: `calc(${at * 100}% - ${at * 2}px)` }} />;
}

/** With `alerts`, the tick that marks an alert level too. */
export function BarLegend({ alerts = false }: { alerts?: boolean }) {
  return (
    <ul class="legend" aria-label="Bar colours">
      {['committed', 'reserved', 'held', 'free', 'over'].map((name) => (
        <li key={name}>
          <span class={`swatch segment-${name}`} aria-hidden="true" /> {name === 'over' ? 'over the limit' : name}
        </li>
      ))}
      {alerts ? (
        <li>
          <span class="swatch swatch-tick" aria-hidden="true" /> webhook alert level
        </li>
      ) : null}
    </ul>
  );
}
