/**
 * The JSON body parser, where a body becomes one canonical value or a 400 naming what is
 * wrong: strict UTF-8 (never silently replaced), bounded nesting (a body of 1 MiB of brackets
 * must not exhaust the stack), no prototype poisoning (`__proto__`, `constructor.prototype`),
 * every number an integer written in digits (`1e3`, `1.0` and `1e-400` are refused rather than
 * rounded) but the few fields that are fractions of a limit (`fractionFields`), and every string storable alike on both engines (no lone surrogate, no NUL).
 */
import type { FastifyInstance } from 'fastify';
import secureJson from 'secure-json-parse';
import { jsonDepthMax } from '../domain/constants.js';
import { invalid } from '../domain/errors.js';
import { storableTextProblem } from '../domain/text.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** What a scan outside strings finds: the deepest nesting, and whether a number has a fraction or exponent. */
function scan(text: string): { depth: number; nonInteger: boolean } {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  let inNumber = false;
  let nonInteger = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, (depth += 1));
    else if (c === 0x7d || c === 0x5d) depth -= 1;
    else if ((c >= 0x30 && c <= 0x39) || c === 0x2d) inNumber = true;
    else if (inNumber && (c === 0x2e || c === 0x65 || c === 0x45)) nonInteger = true;
    else inNumber = false;
  }
  return { depth: deepest, nonInteger };
}

/** Fields that are fractions, not quantities: a webhook threshold's levels and hysteresis. */
const fractionFields = /^thresholds\[[0-9]+\]\.(at\[[0-9]+\]|hysteresis)$/;

/**
 * The path (`allocations[0].committed`) of the first number written with a fraction or an
 * exponent outside `fractionFields`, or null. Only run on a body that has one; the text is
 * valid JSON by then.
 */
function nonIntegerPath(text: string): string | null {
  type Frame = { array: true; index: number } | { array: false; key: string; expectingKey: boolean };
  const frames: Frame[] = [];
  const path = () =>
    frames
      .map((frame, i) => (frame.array ? `[${frame.index}]` : i === 0 ? frame.key : `.${frame.key}`))
      .join('') || 'body';
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    const top = frames.at(-1);
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (top && !top.array && top.expectingKey) top.key = JSON.parse(text.slice(i, end + 1)) as string;
      i = end;
    } else if (c === '{') frames.push({ array: false, key: '', expectingKey: true });
    else if (c === '[') frames.push({ array: true, index: 0 });
    else if (c === '}' || c === ']') frames.pop();
    else if (c === ':' && top && !top.array) top.expectingKey = false;
    else if (c === ',' && top) {
      if (top.array) top.index += 1;
      else top.expectingKey = true;
    } else if (/[-0-9]/.test(c)) {
      const literal = /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?/.exec(text.slice(i, i + 400))![0];
      if (/[.eE]/.test(literal) && !fractionFields.test(path())) return path();
      i += literal.length - 1;
    }
  }
  return null;
}

/** The path of the first string (key or value) that the engines would not store alike, with why. */
function unstorableText(value: unknown, path: string): { field: string; problem: string } | null {
  if (typeof value === 'string') {
    const problem = storableTextProblem(value);
    return problem === null ? null : { field: path || 'body', problem };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const found = unstorableText(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const field = path ? `${path}.${key}` : key;
      const keyProblem = storableTextProblem(key);
      if (keyProblem !== null) return { field: path || 'body', problem: `a property name ${keyProblem}` };
      const found = unstorableText(item, field);
      if (found) return found;
    }
  }
  return null;
}

export function parseJsonBody(bytes: Buffer): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw invalid('body', 'is not valid UTF-8');
  }
  if (text.length === 0) throw invalid('body', 'is empty; send a JSON document');
  const { depth, nonInteger } = scan(text);
  if (depth > jsonDepthMax) throw invalid('body', `nests deeper than ${jsonDepthMax} levels`);
  let value: unknown;
  try {
    value = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    throw invalid('body', `is not valid JSON: ${(error as Error).message}`);
  }
  const nonIntegerAt = nonInteger ? nonIntegerPath(text) : null;
  if (nonIntegerAt !== null) throw invalid(nonIntegerAt, 'must be an integer written in digits (no fraction, no exponent)');
  const unstorable = unstorableText(value, '');
  if (unstorable) throw invalid(unstorable.field, unstorable.problem);
  return value;
}

export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as Buffer));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
}
