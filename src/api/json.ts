/**
 * The JSON body parser: bounded nesting (a body of 1 MiB of brackets must not exhaust the
 * stack) and refusal of prototype poisoning (`__proto__`, `constructor.prototype`), both as a
 * 400 problem.
 */
import type { FastifyInstance } from 'fastify';
import secureJson from 'secure-json-parse';
import { jsonDepthMax } from '../domain/constants.js';
import { invalid } from '../domain/errors.js';

/** The deepest nesting of arrays and objects in `text`, counting outside strings only. */
export function nestingOf(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, (depth += 1));
    else if (c === 0x7d || c === 0x5d) depth -= 1;
  }
  return deepest;
}

export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0) return done(invalid('body', 'is empty; send a JSON document'), undefined);
    if (nestingOf(text) > jsonDepthMax) {
      return done(invalid('body', `nests deeper than ${jsonDepthMax} levels`), undefined);
    }
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (error) {
      done(invalid('body', `is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
