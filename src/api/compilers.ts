/**
 * Request validators and response serializers, compiled once per process and shared by every
 * app built in it. Compiling them (Ajv and fast-json-stringify, one per route and part) was
 * most of `buildApp`'s time — about 300 of its 400 ms — and a process that builds apps again
 * (the test suite builds hundreds, one per engine and file) paid it each time. The compiled
 * functions are pure, so any app may use them; they are keyed by everything that shapes them:
 * the route part, its status or content type, the schema itself, and the shared schemas and
 * options they were compiled with (the same for every app of allot).
 */
import AjvCompiler from '@fastify/ajv-compiler';
import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type Factories = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;
/** What Fastify passes to a compiler for one route part (the types leave some of it out). */
interface RoutePart {
  schema?: unknown;
  httpPart?: string;
  httpStatus?: string;
  contentType?: string;
}

const validatorFactory = AjvCompiler();
const serializerFactory = SerializerSelector();
const validators = new Map<string, unknown>();
const serializers = new Map<string, unknown>();

function remembered<T>(cache: Map<string, unknown>, key: string, compile: () => T): T {
  if (!cache.has(key)) cache.set(key, compile());
  return cache.get(key) as T;
}

// Fastify's types describe the compilers' arguments loosely (a schema, not a route part).
export const sharedCompilers = {
  buildValidator(externalSchemas: unknown, options: unknown) {
    const compile = validatorFactory(externalSchemas as never, options as never);
    const context = JSON.stringify([externalSchemas, options]);
    return (route: RoutePart) =>
      remembered(validators, JSON.stringify([context, route.httpPart, route.contentType, route.schema]), () => compile(route as never));
  },
  buildSerializer(externalSchemas: unknown, options: unknown) {
    const compile = serializerFactory(externalSchemas, options as never);
    const context = JSON.stringify([externalSchemas, options]);
    return (route: RoutePart) =>
      remembered(serializers, JSON.stringify([context, route.httpStatus, route.contentType, route.schema]), () => compile(route as never));
  },
} as unknown as Factories;
