// Goal: the dashboard shows numbers in their kind's format and reads quantity fields the way
// the API does: binary kinds in B, KiB, MiB… (never "1,024 KiB" for a value just under a
// MiB), decimal kinds as exact grouped counts, null as unlimited; a field accepts digits,
// the API's suffixes and thousands separators, and refuses a decimal comma or point rather
// than misreading it.
// Method: the pure functions of web/src/format.ts on literal cases, and a property: every
// binary value's text names the largest unit it reaches, with a number under 1024.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatQuantity, parseQuantityField, valueOfField } from '../../web/src/format.js';

describe('dashboard number formats', () => {
  it.each([
    [0, 'binary', '0 B'],
    [1023, 'binary', '1,023 B'],
    [1024, 'binary', '1 KiB'],
    [1536, 'binary', '1.5 KiB'],
    [1048575, 'binary', '1 MiB'],
    [1073741823, 'binary', '1 GiB'],
    [16 * 1024 ** 3, 'binary', '16 GiB'],
    [5 * 1024 ** 6, 'binary', '5 EiB'],
    [1234567, 'decimal', '1,234,567'],
    [null, 'binary', 'unlimited'],
  ] as const)('%s (%s) reads %s', (value, format, text) => {
    expect(formatQuantity(value, format)).toBe(text);
  });

  it('shows every binary value with a number under 1024 in the largest unit it reaches', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (value) => {
        const [number, unit] = formatQuantity(value, 'binary').split(' ');
        const shown = Number(number!.replace(/,/g, ''));
        expect(shown).toBeLessThan(1024);
        const power = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'].indexOf(unit!);
        expect(Math.abs(shown * 1024 ** power - value)).toBeLessThanOrEqual(0.005 * 1024 ** power + 1e-9 * value);
      }),
    );
  });

  it.each([
    ['', { ok: true, value: null }],
    ['  42 ', { ok: true, value: 42 }],
    ['1,000,000', { ok: true, value: 1_000_000 }],
    ['1_000', { ok: true, value: 1000 }],
    ['512Gi', { ok: true, value: '512Gi' }],
    ['1,024Mi', { ok: true, value: '1024Mi' }],
    ['99999999999999999999', { ok: true, value: '99999999999999999999' }],
  ] as const)('field %j reads %j', (text, parsed) => {
    expect(parseQuantityField(text)).toEqual(parsed);
  });

  it.each(['1,5Gi', '1.5Gi', '12,34', '-1', '10 GB', '1 5', 'ten', '1e3'])('field %j is refused', (text) => {
    expect(parseQuantityField(text).ok).toBe(false);
  });

  it('echoes what a field will be read as', () => {
    expect(valueOfField('1500Gi')).toBe(1500 * 1024 ** 3);
    expect(formatQuantity(valueOfField('1500Gi'), 'binary')).toBe('1.46 TiB');
    expect(valueOfField(42)).toBe(42);
    expect(valueOfField('2k')).toBe(2000);
  });
});
