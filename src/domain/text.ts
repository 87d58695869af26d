/**
 * One canonical text on both engines. SQLite stores any UTF-16 it is given; PostgreSQL refuses
 * NUL and the driver turns a lone surrogate into U+FFFD. So a text either means the same thing
 * once stored on both, or it is refused at the boundary, naming the field:
 *
 * - every text is well-formed Unicode (no lone surrogates) without NUL;
 * - a referenced resource id (the consumer's own id space) is 1 to 255 code points of letters,
 *   marks, numbers, punctuation, symbols and the space, neither starting nor ending with a
 *   space, in normalization form C. No controls (C0, C1, U+0085), no line or paragraph
 *   separators, no format characters (bidi overrides, zero-width joiners, the BOM), no other
 *   blanks: two ids that look alike are the same id;
 * - free text (display names, descriptions) is well-formed, at most its bound in code points,
 *   without control characters.
 */
import { resourceIdLengthMax } from './constants.js';

/** Ids of organizations, projects, kinds, services and regions. */
export const idPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A resource id, as a `u`-flag pattern (the JSON Schema of the API uses the same source). */
export const resourceIdPattern = /^(?! )[\p{L}\p{M}\p{N}\p{P}\p{S} ]+(?<! )$/u;

/** Free text: no C0 controls and no DEL (as a `u`-flag pattern, which refuses lone surrogates too). */
export const freeTextPattern = /^[^\u0000-\u001f\u007f\ud800-\udfff]*$/u;

/** The length of a text in code points, the unit every text bound counts. */
export const codePointsOf = (text: string): number => {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
};

/** Why `text` is not a resource id, or null if it is one. */
export function resourceIdProblem(text: string): string | null {
  const length = codePointsOf(text);
  if (length === 0 || length > resourceIdLengthMax) {
    return `must be 1 to ${resourceIdLengthMax} characters (code points)`;
  }
  if (!text.isWellFormed()) return 'must be well-formed Unicode (it holds a lone surrogate)';
  if (!resourceIdPattern.test(text)) {
    return 'must hold only letters, marks, numbers, punctuation, symbols and inner spaces (no controls, separators, format or bidi characters)';
  }
  if (text.normalize('NFC') !== text) return 'must be in Unicode normalization form C (NFC)';
  return null;
}

/** Why `text` is not free text of at most `lengthMax` code points, or null. */
export function freeTextProblem(text: string, lengthMax: number): string | null {
  if (codePointsOf(text) > lengthMax) return `must be at most ${lengthMax} characters`;
  if (!freeTextPattern.test(text)) return 'must be well-formed Unicode without control characters';
  return null;
}

/**
 * Why a string anywhere in a request cannot be stored alike by both engines, or null: the
 * boundary check every body passes, whatever its schema says about the field.
 */
export function storableTextProblem(text: string): string | null {
  if (!text.isWellFormed()) return 'holds a lone UTF-16 surrogate, which is not Unicode text';
  if (text.includes('\u0000')) return 'holds a NUL character';
  return null;
}
