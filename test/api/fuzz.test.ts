// Goal: no malformed request, however hostile, makes the API fail (5xx), answer an error in any
// form but an `application/problem+json` document with a `type`, or change the ledger.
// Method: read the OpenAPI document the app serves (`/openapi.json`) and, for every path and
// method in it, let fast-check build requests that each carry at least one element that must
// be refused ("a fault"): a path parameter that is not an id (or names nothing), a body mutated
// away from its schema (booleans, extra or missing properties, negative, fractional and huge
// numbers, over-long strings, nesting beyond 32, `__proto__`/`constructor.prototype` keys),
// arbitrary JSON the schema refuses, truncated or garbage text, a non-JSON content type, a bad
// query, `Idempotency-Key` or `If-Match`, or a method no route has. Mutated bodies are checked
// against the schema by a small conservative validator, so a fault is a fault by construction.
// Everything else in a request is as valid as possible (real ids, schema-valid bodies) so the
// request gets as deep as it can, plus odd harmless headers. All go with the admin token
// through `app.inject`. Before: kinds, organizations, projects, quotas, allocations, a hold and
// a token are set up; `verifyCounters()` is [] and a snapshot of what the API shows is taken.
// After: no violations, no mutating 2xx, the same snapshot, `verifyCounters()` still [], and
// `/healthz` answers 200. Requests per engine: `runs` below plus the curated cases.
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/store/store.js';
import { engines } from '../support/engines.js';
import { adminToken, closeApi, getJson, openApi, send, snapshot, walkPages, type ApiHarness } from './harness.js';

const runs = Number(process.env.FUZZ_RUNS ?? 10_000);
const requestTimeoutMs = 10_000;

// ---------------------------------------------------------------------------------------------
// A conservative JSON Schema subset: what the OpenAPI document uses for request parts.

type Schema = Record<string, any>;

/** A number sent as literal text (1e400, 2^53, 30 digits), judged by `value`. */
class Raw {
  constructor(
    readonly text: string,
    readonly value: unknown,
  ) {}
}
/** Object keys starting with this are written raw (after it), e.g. `"__proto__"`. */
const rawKey = '\u0001raw:';

function serialize(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .map(([k, v]) => `${k.startsWith(rawKey) ? k.slice(rawKey.length) : JSON.stringify(k)}:${serialize(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw);

function typeMatches(type: string, v: unknown): boolean {
  switch (type) {
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'string':
      return typeof v === 'string';
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'array':
      return Array.isArray(v);
    case 'object':
      return isObject(v);
    default:
      return true;
  }
}

const regexes = new Map<string, RegExp>();
function regexOf(pattern: string): RegExp {
  let regex = regexes.get(pattern);
  if (!regex) regexes.set(pattern, (regex = new RegExp(pattern, 'u')));
  return regex;
}

/**
 * Whether `schema` may accept `v`. Conservative: whatever it cannot judge (formats) it accepts,
 * so "not accepted" means the server's validator refuses it too.
 */
function accepts(schema: Schema, input: unknown): boolean {
  const v = input instanceof Raw ? input.value : input;
  if (schema.$ref !== undefined) throw new Error(`unexpected $ref ${schema.$ref}`);
  if (schema.anyOf) return (schema.anyOf as Schema[]).some((branch) => accepts(branch, v));
  if ('const' in schema) return v === schema.const;
  if (schema.enum) return (schema.enum as unknown[]).includes(v);
  if (schema.type !== undefined && ![schema.type].flat().some((t: string) => typeMatches(t, v))) return false;
  if (typeof v === 'string') {
    const length = [...v].length;
    if (schema.minLength !== undefined && length < schema.minLength) return false;
    if (schema.maxLength !== undefined && length > schema.maxLength) return false;
    if (schema.pattern !== undefined && !regexOf(schema.pattern).test(v)) return false;
  }
  if (typeof v === 'number') {
    if (schema.minimum !== undefined && v < schema.minimum) return false;
    if (schema.maximum !== undefined && v > schema.maximum) return false;
  }
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) return false;
    if (schema.maxItems !== undefined && v.length > schema.maxItems) return false;
    if (schema.items && !v.every((item) => accepts(schema.items, item))) return false;
  }
  if (isObject(v)) {
    for (const name of (schema.required ?? []) as string[]) if (!(name in v)) return false;
    for (const [key, item] of Object.entries(v)) {
      if (key.startsWith(rawKey)) continue; // judged by the parser
      const property = schema.properties?.[key];
      if (property) {
        if (!accepts(property, item)) return false;
      } else if (schema.additionalProperties === false) return false;
    }
  }
  return true;
}

/** The branch of an anyOf (or the schema itself) that `v`'s JSON type falls in. */
function branchOf(schema: Schema, v: unknown): Schema | undefined {
  if (!schema.anyOf) return schema;
  return (schema.anyOf as Schema[]).find((b) => b.type === undefined || [b.type].flat().some((t: string) => typeMatches(t, v)));
}

/** Every request schema must bound its strings and take no booleans, for the mutations below. */
function checkMutable(schema: Schema, where: string): void {
  if (schema.anyOf) return (schema.anyOf as Schema[]).forEach((b) => checkMutable(b, where));
  if (schema.type === 'boolean') throw new Error(`${where}: a boolean field; the boolean mutation needs none`);
  if (schema.type === 'string' && schema.const === undefined && schema.enum === undefined) {
    if (schema.pattern === undefined && (schema.maxLength === undefined || schema.maxLength > 4096)) {
      throw new Error(`${where}: an unbounded string; the long-string mutation needs a bound`);
    }
  }
  for (const [name, property] of Object.entries((schema.properties ?? {}) as Record<string, Schema>)) {
    checkMutable(property, `${where}.${name}`);
  }
  if (schema.items) checkMutable(schema.items, `${where}[]`);
}

// ---------------------------------------------------------------------------------------------
// The ledger state the fuzzer runs against, and its names.

interface World {
  organizations: string[];
  projects: string[];
  kinds: string[];
  /** Allocation, hold and token ids that exist. */
  ids: string[];
}

const idSource = '^[a-z0-9][a-z0-9-]{0,62}$';
const idLike = fc
  .tuple(fc.constantFrom(...'abcxyz019'), fc.string({ unit: fc.constantFrom(...'abcdz0189-'), maxLength: 12 }))
  .map(([first, rest]) => first + rest);
const overBodyLimit = '['.repeat(1_100_000);

function validValue(schema: Schema, world: World, name: string): fc.Arbitrary<unknown> {
  if (schema.anyOf) return fc.oneof(...(schema.anyOf as Schema[]).map((b) => validValue(b, world, name)));
  if ('const' in schema) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...(schema.enum as unknown[]));
  switch (schema.type) {
    case 'null':
      return fc.constant(null);
    case 'object': {
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, property] of Object.entries(properties)) model[key] = validValue(property, world, key);
      return fc.record(model, { requiredKeys: (schema.required ?? []) as string[] });
    }
    case 'array': {
      const min = schema.minItems ?? 0;
      return fc.array(validValue(schema.items ?? {}, world, name), { minLength: min, maxLength: Math.max(min, Math.min(schema.maxItems ?? 3, 3)) });
    }
    case 'integer':
      return fc.integer({ min: schema.minimum ?? 0, max: Math.min(schema.maximum ?? 1_000_000, 1_000_000) });
    case 'string': {
      if (schema.format === 'date-time') {
        return fc
          .date({ min: new Date('2030-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
          .map((d) => d.toISOString());
      }
      if (schema.pattern === idSource) {
        const known = name === 'kind' ? world.kinds : name === 'organization' ? world.organizations : world.projects;
        return fc.oneof({ arbitrary: fc.constantFrom(...known), weight: 3 }, idLike);
      }
      if (schema.pattern !== undefined && regexOf(schema.pattern).test('1Gi')) {
        // A quantity string.
        return fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom('', 'k', 'M', 'Ki', 'Mi', 'Gi')).map(([n, unit]) => `${n}${unit}`);
      }
      if (schema.pattern !== undefined && accepts(schema, world.ids[0])) {
        // A record id: mostly the world's, so that some requests reach a record.
        return fc.oneof({ arbitrary: fc.constantFrom(...world.ids), weight: 3 }, fc.uuid());
      }
      if (schema.pattern !== undefined) {
        return fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.constantFrom('vm-1', 'ä/ü', '😀', 'x'.repeat(255)))
          .filter((s) => accepts(schema, s));
      }
      const min = schema.minLength ?? 0;
      return fc.string({ minLength: min, maxLength: Math.max(min, Math.min(schema.maxLength ?? 20, 20)) });
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

function batchAppliedNothing(text: string): boolean {
  const { results } = JSON.parse(text) as { results: { status: number | null }[] };
  return results.every((result) => result.status === null || result.status >= 400);
}

/** Positions of `value` (paths of keys and indexes) with the schema that governs each. */
function positions(schema: Schema, value: unknown, path: (string | number)[] = []): { path: (string | number)[]; schema: Schema }[] {
  const own = branchOf(schema, value) ?? schema;
  const found = [{ path, schema }];
  if (Array.isArray(value)) {
    value.forEach((item, index) => found.push(...positions(own.items ?? {}, item, [...path, index])));
  } else if (isObject(value)) {
    for (const [key, item] of Object.entries(value)) found.push(...positions(own.properties?.[key] ?? {}, item, [...path, key]));
  }
  return found;
}

const clone = (v: unknown): any => (v === undefined ? undefined : structuredClone(v));

function setAt(root: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = clone(root);
  let node = copy;
  for (const step of path.slice(0, -1)) node = node[step];
  node[path[path.length - 1]!] = replacement;
  return copy;
}

function getAt(root: unknown, path: (string | number)[]): any {
  let node: any = root;
  for (const step of path) node = node[step];
  return node;
}

const hostileStrings = [
  '',
  ' ',
  "' OR '1'='1",
  '"; DROP TABLE allocations; --',
  '../../etc/passwd',
  '<script>alert(1)</script>',
  '${jndi:ldap://x/a}',
  '{{7*7}}',
  '__proto__',
  'constructor',
  'prototype',
  '\u0000',
  '\u202e',
  '\ud800',
  '😀'.repeat(40),
  'A',
  'NaN',
  'Infinity',
  '-0',
  '1e400',
  '0x10',
  '1.5Gi',
  '-5',
  '99999999999999999999Ei',
  '18446744073709551616',
  // Texts the two engines would store differently, or that look like another id.
  '\udc00',
  'vm-\ud83d',
  'a\u0000b',
  '\u0085',
  'vm\u2028',
  '\u2029',
  '\ufeffvm-1',
  ' vm-1',
  'vm-1 ',
  'vm\u00a01',
  'vm\u200d1',
  'cafe\u0301',
  '\u2066x\u2069',
  '\u00ad',
];

/** A body value that is refused wherever it stands: each mutation of `base` at one position. */
function mutatedBody(schema: Schema, base: unknown): fc.Arbitrary<{ text: string; how: string }> {
  const spots = positions(schema, base);
  const objectSpots = spots.filter((s) => isObject(getAt(base, s.path)));
  const numberSpots = spots.filter((s) => typeof getAt(base, s.path) === 'number');
  const arraySpots = spots.filter((s) => Array.isArray(getAt(base, s.path)));
  const spot = fc.constantFrom(...spots);
  const mutations: fc.Arbitrary<{ value: unknown; how: string; parserRefuses?: boolean }>[] = [
    fc.tuple(spot, fc.constantFrom<unknown>(true, false, [true], { x: false })).map(([s, b]) => ({ value: setAt(base, s.path, b), how: 'boolean' })),
    fc.tuple(spot, fc.constantFrom<unknown>(null, 0, 'x', [], {}, [[]], 1.5, -1)).map(([s, v]) => ({ value: setAt(base, s.path, v), how: 'wrong type' })),
    fc.tuple(spot, fc.integer({ min: 4097, max: 12_000 }), fc.constantFrom('a', '9', 'é', '😀', ' ', '\u0000')).map(([s, n, c]) => ({
      value: setAt(base, s.path, c.repeat(n)),
      how: 'long string',
    })),
    fc.tuple(spot, fc.constantFrom(...hostileStrings)).map(([s, h]) => ({ value: setAt(base, s.path, h), how: 'hostile string' })),
    fc.tuple(spot, fc.integer({ min: 33, max: 400 }), fc.constantFrom('[', '{"a":')).map(([s, depth, open]) => {
      const close = open === '[' ? ']' : '}';
      const inner = serialize(getAt(base, s.path));
      return { value: setAt(base, s.path, new Raw(open.repeat(depth) + inner + close.repeat(depth), undefined)), how: 'nesting beyond 32', parserRefuses: true };
    }),
  ];
  if (objectSpots.length > 0) {
    const objectSpot = fc.constantFrom(...objectSpots);
    mutations.push(
      fc.tuple(objectSpot, fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })).map(([s, key, v]) => ({
        value: setAt(base, s.path, { ...getAt(base, s.path), [key]: v }),
        how: 'extra property',
      })),
      fc.tuple(objectSpot, fc.constantFrom('"__proto__"', '"\\u005f_proto__"', '"constructor"'), fc.jsonValue({ maxDepth: 1 })).map(([s, key, v]) => ({
        value: setAt(base, s.path, {
          ...getAt(base, s.path),
          [rawKey + key]: key === '"constructor"' ? { prototype: { polluted: v } } : { polluted: v, role: 'service-admin' },
        }),
        how: 'prototype poisoning',
        parserRefuses: key !== '"\\u005f_proto__"',
      })),
    );
    const requiredSpots = objectSpots.filter((s) => ((branchOf(s.schema, {}) ?? s.schema).required ?? []).length > 0);
    if (requiredSpots.length > 0) {
      mutations.push(
        fc.tuple(fc.constantFrom(...requiredSpots), fc.nat()).map(([s, n]) => {
          const required = (branchOf(s.schema, {}) ?? s.schema).required as string[];
          const copy = { ...getAt(base, s.path) };
          delete copy[required[n % required.length]!];
          return { value: setAt(base, s.path, copy), how: 'missing property' };
        }),
      );
    }
  }
  if (numberSpots.length > 0) {
    mutations.push(
      fc
        .tuple(
          fc.constantFrom(...numberSpots),
          fc.oneof(
            fc.integer({ min: -1e15, max: -1 }).map((n) => new Raw(String(n), n)),
            fc.integer({ min: 0, max: 1e6 }).map((n) => new Raw(`${n}.5`, n + 0.5)),
            fc.constantFrom(
              new Raw('9007199254740992', 2 ** 53),
              new Raw('9007199254740993', 2 ** 53 + 1),
              new Raw('1e20', 1e20),
              new Raw('1e400', Infinity),
              new Raw('-1e400', -Infinity),
              new Raw('123456789012345678901234567890', 1.2345678901234568e29),
              new Raw('604801', 604801),
              new Raw('0.0000001', 1e-7),
              new Raw('-1', -1),
            ),
            fc.nat().map((n) => String(n)),
          ),
        )
        .map(([s, v]) => ({ value: setAt(base, s.path, v), how: 'bad number' })),
      // Integers written with a fraction or an exponent: their values pass the schema, but the
      // body parser refuses them rather than round them.
      fc
        .tuple(
          fc.constantFrom(...numberSpots),
          fc.constantFrom(new Raw('1e3', 1000), new Raw('2e0', 2), new Raw('1.0', 1), new Raw('1e-400', 0), new Raw('10E1', 100), new Raw('5.000', 5)),
        )
        .map(([s, v]) => ({ value: setAt(base, s.path, v), how: 'integer in another spelling', parserRefuses: true })),
    );
  }
  if (arraySpots.length > 0) {
    mutations.push(
      fc.tuple(fc.constantFrom(...arraySpots), fc.boolean()).map(([s, empty]) => {
        const items = getAt(base, s.path) as unknown[];
        return { value: setAt(base, s.path, empty ? [] : Array.from({ length: 65 }, (_, i) => clone(items[i % items.length]))), how: 'array size' };
      }),
    );
  }
  return fc
    .oneof(...mutations)
    .filter((m) => m.parserRefuses === true || !accepts(schema, m.value))
    .map((m) => ({ text: serialize(m.value), how: m.how }));
}

function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text.replace(/^\uFEFF/, ''));
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Operations and requests.

interface Operation {
  method: string;
  path: string;
  pathParams: string[];
  query: Record<string, Schema>;
  pathSchemas: Record<string, Schema>;
  hasIdempotencyKey: boolean;
  readsIfMatch: boolean;
  body?: Schema;
}

interface FuzzRequest {
  fault: string;
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  /** Bytes when the body is deliberately not UTF-8. */
  payload?: string | Buffer;
}

/** `text` with an invalid UTF-8 sequence put inside its first string (or at its end). */
function withInvalidUtf8(text: string, bytes: readonly number[]): Buffer {
  const at = text.indexOf('"') + 1;
  const cut = at > 0 ? at : text.length;
  return Buffer.concat([Buffer.from(text.slice(0, cut)), Buffer.from(bytes), Buffer.from(text.slice(cut))]);
}

/** Path parameter values that are no id (raw: already URL-safe; other: encoded). */
const hostilePathRaw = [
  '.', '..', '%2e%2e', '%2F', '..%2F..%2Fetc%2Fpasswd', '%00', '%ZZ', '%', '%C3%A4', '%E2%80%AE', 'O1',
  '-o1', "o1'--", '%27%20OR%201%3D1', 'o1;drop', '__proto__', '%5F%5Fproto%5F%5F', '..;', '%25', '%u0041', '~', '*',
];

const oddHeaders: Record<string, fc.Arbitrary<string>> = {
  accept: fc.constantFrom('application/xml', 'text/html', '*/*', 'application/problem+json', 'image/*;q=0.1'),
  'x-forwarded-for': fc.constantFrom('127.0.0.1', '1.2.3.4, 5.6.7.8', 'not-an-ip', '::1'),
  'if-none-match': fc.constantFrom('*', '"1"', 'W/"x"'),
  'x-http-method-override': fc.constantFrom('DELETE', 'PUT', 'GET'),
  'accept-encoding': fc.constantFrom('gzip', 'br', 'identity;q=0', 'x'.repeat(200)),
  range: fc.constantFrom('bytes=0-1', 'bytes=-1', 'items=0-9'),
  cookie: fc.constantFrom('session=admin', 'a=' + 'b'.repeat(1000)),
  'user-agent': fc.string({ unit: 'binary-ascii', maxLength: 300 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
  prefer: fc.constantFrom('return=minimal', 'respond-async'),
};

const visibleAscii = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 });
const headerChars = fc.integer({ min: 0x20, max: 0xff }).filter((c) => c < 0x7f || c >= 0xa0).map((c) => String.fromCharCode(c));

function requestArbitrary(operation: Operation, world: World): fc.Arbitrary<FuzzRequest> {
  const faults = ['method'];
  if (operation.pathParams.length > 0) faults.push('path');
  if (Object.keys(operation.query).length > 0) faults.push('query');
  if (operation.body) faults.push('body', 'body', 'body', 'arbitrary json');
  if (operation.method !== 'GET') faults.push('text', 'content-type', 'bytes');
  if (operation.hasIdempotencyKey) faults.push('idempotency-key');
  if (operation.readsIfMatch) faults.push('if-match');

  const validParam = (name: string): fc.Arbitrary<string> => {
    if (name === 'id') {
      return fc.oneof(
        { arbitrary: fc.constantFrom(...world.ids), weight: 3 },
        fc.string({ minLength: 1, maxLength: 64 }).filter((s) => !world.ids.includes(s)).map((s) => encodeURIComponent(s)),
      );
    }
    return validValue(operation.pathSchemas[name] ?? {}, world, name).map((v) => String(v));
  };
  const invalidParam = (name: string): fc.Arbitrary<string> => {
    const schema = operation.pathSchemas[name] ?? {};
    const refused = (raw: string) => {
      let decoded: string;
      try {
        decoded = decodeURIComponent(raw);
      } catch {
        return true; // not even a URL component
      }
      return !accepts(schema, decoded) || (name === 'id' && !world.ids.includes(decoded));
    };
    const encoded = (s: string) => {
      try {
        return encodeURIComponent(s);
      } catch {
        return '%ZZ';
      }
    };
    return fc
      .oneof(
        fc.constantFrom(...hostilePathRaw),
        fc.constantFrom(...hostileStrings).map(encoded),
        fc.string({ unit: 'binary', maxLength: 80 }).map(encoded),
        fc.integer({ min: 64, max: 600 }).map((n) => 'a'.repeat(n)),
        idLike.map((s) => s.toUpperCase()).filter((s) => /[A-Z]/.test(s)),
      )
      .filter(refused);
  };

  const validBody = operation.body ? validValue(operation.body, world, 'body') : fc.constant(undefined);
  const extraHeaders = fc
    .subarray(Object.keys(oddHeaders), { maxLength: 3 })
    .chain((names) => (names.length === 0 ? fc.constant({}) : fc.record(Object.fromEntries(names.map((n) => [n, oddHeaders[n]!])))));
  const goodKey = operation.hasIdempotencyKey ? fc.option(visibleAscii, { nil: undefined }) : fc.constant(undefined);
  const goodIfMatch = operation.readsIfMatch ? fc.option(fc.constantFrom('*', '"1"', ' "2" '), { nil: undefined }) : fc.constant(undefined);

  return fc.constantFrom(...faults).chain((fault) => {
    const faultyParam = fault === 'path' ? fc.constantFrom(...operation.pathParams) : fc.constant(undefined);
    return fc
      .record({
        faultyParam,
        params: fc.record(Object.fromEntries(operation.pathParams.map((p) => [p, validParam(p)]))),
        badParam: faultyParam.chain((p) => (p === undefined ? fc.constant('') : invalidParam(p))),
        body: validBody,
        headers: extraHeaders,
        key: goodKey,
        ifMatch: goodIfMatch,
        jsonType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/JSON'),
      })
      .chain((base) => {
        const params = { ...(base.params as Record<string, string>) };
        if (base.faultyParam !== undefined) params[base.faultyParam] = base.badParam;
        const url = operation.path.replace(/\{(\w+)\}/g, (_, p: string) => params[p] ?? 'x');
        const headers: Record<string, string | string[]> = { ...(base.headers as Record<string, string>), authorization: `Bearer ${adminToken}` };
        if (base.key !== undefined) headers['idempotency-key'] = base.key;
        if (base.ifMatch !== undefined) headers['if-match'] = base.ifMatch;
        const bodyText = base.body === undefined ? undefined : serialize(base.body);
        const json = (payload: string | undefined, contentType = base.jsonType) =>
          payload === undefined ? {} : { payload, contentType };
        const make = (part: { url?: string; method?: string; payload?: string | Buffer; contentType?: string; headers?: Record<string, string | string[]> }): FuzzRequest => {
          const all = { ...headers, ...(part.headers ?? {}) };
          if (part.payload !== undefined) all['content-type'] = part.contentType ?? base.jsonType;
          return {
            fault,
            method: part.method ?? operation.method,
            url: part.url ?? url,
            headers: all,
            ...(part.payload === undefined ? {} : { payload: part.payload }),
          };
        };
        switch (fault) {
          case 'method':
            return fc.constantFrom('PATCH', 'OPTIONS').map((method) => make({ method, ...json(bodyText) }));
          case 'path':
            return fc.constant(make(json(bodyText)));
          case 'query': {
            const names = Object.keys(operation.query);
            return fc
              .oneof(
                fc.tuple(fc.string({ unit: fc.constantFrom(...'abcXYZ_019'), minLength: 1, maxLength: 12 }).filter((k) => !names.includes(k)), fc.string({ maxLength: 20 }))
                  .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`),
                fc.constantFrom(...names).map((k) => `${k}=1&${k}=2`),
                // Percent-encoding that is not UTF-8 is refused, never taken literally.
                fc.tuple(fc.constantFrom(...names), fc.constantFrom('%ED%A0%80', '%C3%28', '%FF', 'vm%80', '%E2%82')).map(([k, v]) => `${k}=${v}`),
                fc.tuple(fc.constantFrom(...names), fc.oneof(fc.constantFrom(...hostileStrings), fc.string({ unit: 'binary', maxLength: 30 }), fc.integer({ min: 513, max: 3000 }).map((n) => 'c'.repeat(n))))
                  .filter(([k, v]) => !accepts(operation.query[k]!, v))
                  .map(([k, v]) => {
                    try {
                      return `${k}=${encodeURIComponent(v)}`;
                    } catch {
                      return `${k}=%ZZ`;
                    }
                  }),
              )
              .map((query) => make({ url: `${url}?${query}`, ...json(bodyText) }));
          }
          case 'body':
            return mutatedBody(operation.body!, base.body).map((m) => ({ ...make(json(m.text)), fault: `body: ${m.how}` }));
          case 'arbitrary json':
            return fc
              .jsonValue({ maxDepth: 4 })
              .filter((v) => !accepts(operation.body!, v))
              .map((v) => make(json(JSON.stringify(v))));
          case 'text': {
            const text = bodyText ?? '{}';
            return fc
              .oneof(
                fc.nat({ max: Math.max(0, text.length - 1) }).map((n) => ({ t: text.slice(0, n), how: 'truncated' })),
                fc.constantFrom('x', '}', ',', '{}', '[', 'null', '"', "'").map((g) => ({ t: text + g, how: 'trailing garbage' })),
                fc.string({ unit: 'binary', maxLength: 200 }).filter((s) => !parsesAsJson(s)).map((t) => ({ t, how: 'garbage' })),
                fc.constantFrom("{'a':1}", '{"a":1,}', 'NaN', 'undefined', '{"a":01}', '\uFEFF', '[1,2', '{"a"}', 'tru', '"\\x41"').map((t) => ({ t, how: 'near-JSON' })),
                fc.integer({ min: 33, max: 200_000 }).map((n) => ({ t: '['.repeat(n), how: 'bracket bomb' })),
                fc.integer({ min: 33, max: 2000 }).map((n) => ({ t: '{"a":'.repeat(n) + '1' + '}'.repeat(n), how: 'deep objects' })),
                fc.constant({ t: overBodyLimit, how: 'over the body limit' }),
              )
              .map(({ t, how }) => ({ ...make(json(t)), fault: `text: ${how}` }));
          }
          case 'bytes': {
            // A body that is JSON but not UTF-8: a lone continuation byte, an overlong form, a
            // surrogate encoded as if it were a character, a truncated sequence.
            const text = bodyText ?? '{}';
            return fc
              .constantFrom([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff], [0xf4, 0x90, 0x80, 0x80])
              .map((bytes) => ({ ...make({ payload: withInvalidUtf8(text, bytes) }), fault: 'bytes: invalid UTF-8' }));
          }
          case 'content-type':
            return fc
              .constantFrom(
                'text/plain',
                'text/html',
                'application/xml',
                'application/x-www-form-urlencoded',
                'multipart/form-data; boundary=zz',
                'application/octet-stream',
                'application/json-patch+json',
                'application/problem+json',
                'application/jsonp',
                'json',
                'application/',
                ';',
              )
              .map((contentType) => make({ payload: bodyText ?? '{}', contentType }));
          case 'idempotency-key':
            return fc
              .oneof(
                fc.constantFrom<string | string[]>('', ' ', 'a b', 'clé', '\t', ['a', 'b'], 'key\u00a0'),
                fc.integer({ min: 256, max: 2000 }).map((n) => 'k'.repeat(n)),
                fc.string({ unit: headerChars, minLength: 1, maxLength: 50 }),
              )
              .filter((k) => Array.isArray(k) || !/^[\x21-\x7e]{1,255}$/.test(k))
              .map((key) => make({ headers: { 'idempotency-key': key }, ...json(bodyText) }));
          case 'if-match':
            return fc
              .oneof(
                fc.constantFrom('W/"1"', '"1", "2"', '1', '"abc"', '"-1"', '""', '"1234567890123456"', '"1.0"', '**', '"999999999"', '"0999999999"'),
                fc.string({ unit: headerChars, maxLength: 30 }),
              )
              .filter((v) => {
                if (v.trim() === '*') return false;
                const tag = /^\s*"([0-9]{1,15})"\s*$/.exec(v);
                return tag === null || Number(tag[1]) > 1000; // a stale generation is refused (412)
              })
              .map((ifMatch) => make({ headers: { 'if-match': ifMatch }, ...json(bodyText) }));
          default:
            throw new Error(`unknown fault ${fault}`);
        }
      });
  });
}

/** Operations from the OpenAPI document. */
function operationsOf(document: any): Operation[] {
  const operations: Operation[] = [];
  for (const [path, methods] of Object.entries<any>(document.paths)) {
    for (const [method, spec] of Object.entries<any>(methods)) {
      const parameters = (spec.parameters ?? []) as { in: string; name: string; schema: Schema }[];
      const body = spec.requestBody?.content?.['application/json']?.schema as Schema | undefined;
      if (body) checkMutable(body, `${method} ${path}`);
      const upper = method.toUpperCase();
      operations.push({
        method: upper,
        path,
        pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
        pathSchemas: Object.fromEntries(parameters.filter((p) => p.in === 'path').map((p) => [p.name, p.schema])),
        query: Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
        hasIdempotencyKey: parameters.some((p) => p.in === 'header' && p.name === 'idempotency-key'),
        // The handlers that read If-Match: quota updates and changes to one allocation or hold.
        readsIfMatch:
          parameters.some((p) => p.in === 'header' && p.name === 'if-match') &&
          (upper !== 'POST' || /\/(confirm|release)$/.test(path)),
        ...(body ? { body } : {}),
      });
    }
  }
  return operations;
}

// ---------------------------------------------------------------------------------------------

interface Violation {
  rule: string;
  fault: string;
  request: string;
  response: string;
}

/** Everything a refused request must leave as it was: the harness snapshot, holds, tokens, journals. */
async function state(app: FastifyInstance, world: World): Promise<unknown> {
  const holds: Record<string, unknown> = {};
  const journals: Record<string, unknown> = {};
  for (const organization of world.organizations) {
    journals[organization] = await getJson(app, `/v1/organizations/${organization}/journal?limit=1000`);
    for (const project of (await walkPages(app, `/v1/organizations/${organization}/projects`, 1000)).items) {
      holds[`${organization}/${project.id}`] = (
        await walkPages(app, `/v1/organizations/${organization}/projects/${project.id}/holds`, 1000)
      ).items;
    }
  }
  return { snapshot: await snapshot(app), holds, journals, tokens: await getJson(app, '/v1/tokens') };
}

describe.each(engines)('fuzzing the API on %s', (engine: Engine) => {
  let api: ApiHarness;
  let app: FastifyInstance;
  const world: World = { organizations: ['o1', 'o2'], projects: ['p1', 'p2', 'q1'], kinds: ['cpu', 'memory', 'gpus'], ids: [] };
  let before: unknown;
  const violations: Violation[] = [];
  const statuses = new Map<number, number>();
  const faults = new Map<string, number>();
  let sent = 0;
  let getSuccesses = 0;
  let injectMs = 0;

  beforeAll(async () => {
    api = await openApi(engine);
    app = api.app;
    const ok = async (method: 'PUT' | 'POST', url: string, body: unknown) => {
      const response = await send(app, { method, url, body });
      expect(response.status, `${method} ${url}: ${response.text}`).toBeLessThan(300);
      return response.json;
    };
    await ok('PUT', '/v1/resource-kinds/cpu', { displayName: 'CPU', default: 10 });
    await ok('PUT', '/v1/resource-kinds/memory', { displayName: 'Memory', format: 'binary', default: '1Gi' });
    await ok('PUT', '/v1/resource-kinds/gpus', { displayName: 'GPUs', default: null });
    for (const [organization, projects] of [['o1', ['p1', 'p2']], ['o2', ['q1']]] as const) {
      await ok('PUT', `/v1/organizations/${organization}`, {});
      for (const project of projects) await ok('PUT', `/v1/organizations/${organization}/projects/${project}`, {});
      await ok('PUT', `/v1/organizations/${organization}/quotas`, { quotas: [{ kind: 'cpu', quantity: 1000 }, { kind: 'memory', quantity: '64Gi' }] });
    }
    for (const [organization, project, id] of [['o1', 'p1', 'vm-1'], ['o1', 'p2', 'vm-2'], ['o2', 'q1', 'vm-3']]) {
      const allocation = await ok('POST', `/v1/organizations/${organization}/projects/${project}/allocations`, {
        resource: { kind: 'vm', id },
        allocations: [{ kind: 'cpu', committed: 4, reserved: 2 }, { kind: 'memory', committed: '8Gi' }],
      });
      world.ids.push(allocation.id);
    }
    const hold = await ok('POST', '/v1/organizations/o1/projects/p1/holds', {
      resource: { kind: 'vm', id: 'vm-held' },
      allocations: [{ kind: 'cpu', committed: 3 }],
      ttlSeconds: 7 * 24 * 3600,
    });
    world.ids.push(hold.id);
    const token = await ok('POST', '/v1/tokens', { role: 'reader', organization: 'o1' });
    world.ids.push(token.id);
    expect(await api.test.ledger.verifyCounters()).toEqual([]);
    before = await state(app, world);
  });
  afterAll(async () => {
    await closeApi(api);
  });

  async function fire(request: FuzzRequest): Promise<void> {
    sent += 1;
    faults.set(request.fault, (faults.get(request.fault) ?? 0) + 1);
    const shown = () =>
      `${request.method} ${request.url.slice(0, 200)} ${JSON.stringify(request.headers).slice(0, 300)} ` +
      `${request.payload === undefined ? '' : JSON.stringify(typeof request.payload === 'string' ? request.payload.slice(0, 200) : request.payload.toString('hex').slice(0, 200))}`;
    let response;
    const injectStarted = performance.now();
    try {
      let timer: NodeJS.Timeout | undefined;
      response = await Promise.race([
        app.inject({ method: request.method as any, url: request.url, headers: request.headers, ...(request.payload === undefined ? {} : { payload: request.payload }) }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${requestTimeoutMs} ms`)), requestTimeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (error) {
      violations.push({ rule: 'answers', fault: request.fault, request: shown(), response: String(error) });
      return;
    }
    injectMs += performance.now() - injectStarted;
    const status = response.statusCode;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    const violation = (rule: string) =>
      violations.push({ rule, fault: request.fault, request: shown(), response: `${status} ${response.headers['content-type']} ${response.body.slice(0, 300)}` });
    if (status >= 500) return void violation('no 5xx');
    if (status >= 200 && status < 300) {
      if (request.method === 'GET') getSuccesses += 1;
      // A batch answers 200 with each entry's own answer: a mutation only if one succeeded.
      else if (!(request.url.includes('/batch') && batchAppliedNothing(response.body))) violation('no mutating success');
      return;
    }
    if (status < 400) return void violation('only 2xx or 4xx');
    let body: any;
    try {
      body = JSON.parse(response.body);
    } catch {
      body = undefined;
    }
    const contentType = String(response.headers['content-type'] ?? '');
    if (!/^application\/problem\+json(;|$)/.test(contentType) || typeof body?.type !== 'string' || body?.status !== status) {
      violation('4xx is application/problem+json with a type');
    }
  }

  it(`sends ${runs} generated malformed requests built from /openapi.json`, async () => {
    const document = await getJson(app, '/openapi.json');
    const operations = operationsOf(document);
    expect(operations.length).toBeGreaterThanOrEqual(20);
    const requests = fc.oneof(...operations.map((operation) => requestArbitrary(operation, world)));
    const started = Date.now();
    await fc.assert(fc.asyncProperty(requests, async (request) => fire(request)), { numRuns: runs });
    const byFault = [...faults.entries()].sort().map(([f, n]) => `${f}: ${n}`).join(', ');
    const byStatus = [...statuses.entries()].sort().map(([s, n]) => `${s}: ${n}`).join(', ');
    console.log(
      `[fuzz ${engine}] ${sent} requests in ${Date.now() - started} ms (${Math.round(injectMs)} ms answering) over ${operations.length} operations; ` +
        `statuses {${byStatus}}; GET successes ${getSuccesses}; faults {${byFault}}`,
    );
    expect(sent).toBeGreaterThanOrEqual(runs);
    // 10,000 requests take 10-20 s on a quiet 2-core machine and were seen taking 64-67 s on a
    // loaded one (load average 12-16): the default 60 s budget was the flake, not the server.
  }, 240_000);

  const report = (rule: string) => {
    const found = violations.filter((v) => v.rule === rule);
    const kinds = new Map<string, Violation>();
    for (const v of found) kinds.set(`${v.fault} → ${v.response.slice(0, 60)}`, v);
    return `${found.length} violations of "${rule}", e.g.:\n${[...kinds.values()].slice(0, 8).map((v) => `  [${v.fault}] ${v.request}\n    → ${v.response}`).join('\n')}`;
  };

  it('every request is answered, none with a 5xx', () => {
    expect(violations.filter((v) => v.rule === 'answers' || v.rule === 'no 5xx' || v.rule === 'only 2xx or 4xx'), report('no 5xx') + report('answers')).toEqual([]);
  });

  it('every 4xx is an application/problem+json document with a type', () => {
    const rule = '4xx is application/problem+json with a type';
    expect(violations.filter((v) => v.rule === rule).length, report(rule)).toBe(0);
  });

  it('no malformed request succeeded in changing anything (no 2xx but for reads)', () => {
    expect(violations.filter((v) => v.rule === 'no mutating success').length, report('no mutating success')).toBe(0);
  });

  it('the ledger is unchanged: same state through the API, counters verified', async () => {
    expect(await state(app, world)).toEqual(before);
    expect(await api.test.ledger.verifyCounters()).toEqual([]);
  });

  it('/healthz still answers 200', async () => {
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
  });
});
