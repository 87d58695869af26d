/**
 * Numbers as people read them: a binary kind (bytes) in KiB, MiB, GiB…, a decimal kind as
 * the exact count with digit grouping. `null` is unlimited.
 */
export type KindFormat = 'decimal' | 'binary';

const binaryUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
const grouping = new Intl.NumberFormat('en');
const twoDecimals = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });

export function formatQuantity(value: number | null, format: KindFormat): string {
  if (value === null) return 'unlimited';
  if (format === 'decimal') return grouping.format(value);
  let unit = 0;
  let scaled = value;
  // Rounded to two decimals, 1023.999 KiB would read "1,024 KiB": move up a unit then too.
  while (Math.round(scaled * 100) / 100 >= 1024 && unit < binaryUnits.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${twoDecimals.format(scaled)} ${binaryUnits[unit]}`;
}

/** The exact value, for a title beside a rounded one. */
export const exactly = (value: number | null) => (value === null ? 'unlimited' : grouping.format(value));

const quantityPattern = /^([0-9]{1,20})(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/**
 * What a quantity field holds: '' (none), or the API's spelling: digits, or digits with a
 * suffix (`10Gi`, `500M`), sent as the string the server parses. Anything else is refused
 * here with the same words the server would use.
 */
export function parseQuantityField(text: string): { ok: true; value: number | string | null } | { ok: false; message: string } {
  const trimmedEnds = text.trim();
  if (trimmedEnds === '') return { ok: true, value: null };
  if (/\s/.test(trimmedEnds)) return { ok: false, message: 'No spaces inside a number (group digits with , or _)' };
  const spaced = trimmedEnds.replace(/_/g, '');
  // A comma only as a thousands separator (1,000,000): "1,5Gi" is a decimal comma, refused
  // rather than read as 15Gi.
  if (spaced.includes(',') && !/^[0-9]{1,3}(,[0-9]{3})+([a-zA-Z]*)$/.test(spaced)) {
    return { ok: false, message: 'Whole numbers only; a comma may only group thousands (1,000)' };
  }
  const trimmed = spaced.replace(/,/g, '');
  const match = quantityPattern.exec(trimmed);
  if (!match) return { ok: false, message: 'Use digits with an optional suffix: k M G T P E Ki Mi Gi Ti Pi Ei' };
  const plain = match[2] === undefined && Number.isSafeInteger(Number(trimmed));
  return { ok: true, value: plain ? Number(trimmed) : trimmed };
}

const time = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
export const formatTime = (iso: string | null) => (iso === null ? '—' : time.format(new Date(iso)));

const suffixFactors: Record<string, bigint> = {
  k: 1000n, M: 1000n ** 2n, G: 1000n ** 3n, T: 1000n ** 4n, P: 1000n ** 5n, E: 1000n ** 6n,
  Ki: 1024n, Mi: 1024n ** 2n, Gi: 1024n ** 3n, Ti: 1024n ** 4n, Pi: 1024n ** 5n, Ei: 1024n ** 6n,
};

/** The number a parsed field stands for, to echo it back ("= 1,500 GiB"); approximate above 2^53. */
export function valueOfField(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = quantityPattern.exec(value)!;
  return Number(BigInt(match[1]!) * (suffixFactors[match[2] ?? ''] ?? 1n));
}
