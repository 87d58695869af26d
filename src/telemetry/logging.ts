/**
 * The logger of `allot serve`: JSON lines on a stream (stderr), with no secret in them.
 *
 * What a log line could carry a secret in, and what keeps it out:
 * - Requests are logged by Fastify's serializer: method, url, host, remote address and port,
 *   never headers (so no `Authorization`) and never bodies (so no host token of
 *   `PUT /v1/regions/:region/hosts/:service`, no token in a created token's answer). No route
 *   takes a credential in its URL.
 * - Should a header, a body or a token field ever be logged (a plugin's debug line, an error
 *   object carrying its request), `redact` censors them by path, and an error's `rawPacket`
 *   (Node's copy of a malformed request's bytes, headers included, logged by Fastify at trace).
 * - Last, every line is scrubbed on its way out of what looks like a credential wherever it
 *   sits, a message included: an API token (`allot_…`), a JWT, a `Bearer` credential, and the
 *   secrets given (the admin token).
 */
import type { FastifyServerOptions } from 'fastify';

export const redactedPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'req.body',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'body',
  '*.body',
  'token',
  '*.token',
  'adminToken',
  '*.adminToken',
  'authorization',
  '*.authorization',
  'err.rawPacket',
  '*.rawPacket',
];

const censor = '[redacted]';

/** Credentials by their shape: API tokens, JWTs (compact JWS), bearer credentials. */
const credentialPatterns = [
  'allot_[A-Za-z0-9_-]{20,}',
  'eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*',
  '(?<=[Bb]earer +)[A-Za-z0-9._~+/=-]+',
];

/** Replaces every credential-shaped text, and each of `secrets` (8 characters or more), with a mark. */
export function scrubber(secrets: readonly string[] = []): (text: string) => string {
  const literal = secrets.filter((secret) => secret.length >= 8).map((secret) => secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  // A secret inside a JSON string is written escaped: match that spelling too.
  const escaped = secrets
    .filter((secret) => secret.length >= 8 && JSON.stringify(secret).slice(1, -1) !== secret)
    .map((secret) => JSON.stringify(secret).slice(1, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp([...literal, ...escaped, ...credentialPatterns].join('|'), 'g');
  return (text) => text.replace(pattern, censor);
}

interface Writable {
  write(chunk: string): unknown;
}

/** A stream that scrubs each line (see `scrubber`) before writing it to `stream`. */
export function scrubbing(stream: Writable, secrets: readonly string[] = []): Writable {
  const scrub = scrubber(secrets);
  return { write: (chunk: string) => stream.write(scrub(chunk)) };
}

/** Fastify's logger options for a server: `level`, JSON lines on `stream`, no secret (see above). */
export function loggerOptions(level: string, stream: Writable, secrets: readonly string[] = []): FastifyServerOptions['logger'] {
  return {
    level,
    stream: scrubbing(stream, secrets),
    redact: { paths: redactedPaths, censor },
  } as FastifyServerOptions['logger'];
}
