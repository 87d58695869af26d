/**
 * The journal of an organization: pages of entries after a revision, and a live stream of
 * new ones as server-sent events. The stream resumes from `after` or, on reconnect, from the
 * `Last-Event-ID` the client sends (each event's id is its revision), so a client that
 * reconnects gets every entry exactly once.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { journalPageSizeMax, streamRecheckIntervalMs, watchersMax } from '../../domain/constants.js';
import { AllotError, invalid } from '../../domain/errors.js';
import type { Ledger } from '../../ledger/ledger.js';
import { JournalFeed } from '../feed.js';
import {
  Journal,
  JournalQuery,
  OrganizationParams,
  problemResponses,
  WatchQuery,
} from '../schemas.js';

const heartbeatMs = 15_000;

export const journalRoutes: FastifyPluginAsyncTypebox<{ ledger: Ledger; watchersPerPrincipalMax: number }> = async (
  app,
  { ledger, watchersPerPrincipalMax },
) => {
  app.get('/v1/organizations/:organization/journal', {
    config: { action: 'read-organization' },
    schema: {
      tags: ['journal'],
      summary: "Page through an organization's journal, oldest first",
      description:
        'Every ledger change has exactly one entry, numbered by a gap-free revision per ' +
        'organization. Pass the last revision you have as `after` for the next page.',
      params: OrganizationParams,
      querystring: JournalQuery,
      response: { 200: Journal, ...problemResponses(400, 401, 404) },
    },
    handler: async (request) => {
      if (request.query.tail !== undefined) {
        if (request.query.after !== undefined || request.query.limit !== undefined) {
          throw invalid('tail', 'cannot be combined with after or limit');
        }
        const items = await ledger.readJournalTail(request.params.organization, Number(request.query.tail));
        return { items, lastRevision: items.at(-1)?.revision ?? 0 };
      }
      const after = Number(request.query.after ?? 0);
      const limit = request.query.limit === undefined ? undefined : Number(request.query.limit);
      const items = await ledger.readJournal(request.params.organization, after, limit);
      return { items, lastRevision: items.at(-1)?.revision ?? after };
    },
  });

  // One follower per watched organization, shared by its streams (see feed.ts).
  const feed = new JournalFeed(ledger);
  app.addHook('onClose', async () => feed.close());
  let watchers = 0;
  const watchersByPrincipal = new Map<string, number>();
  // Open streams end as the server starts closing, so `app.close()` (SIGTERM) does not wait on
  // them: 'onClose' runs only after every connection has ended, which a stream never does.
  // A watch still being authenticated or looked up when closing starts is refused below
  // rather than left to stream forever.
  const stopAll = new Set<() => void>();
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    for (const stop of stopAll) stop();
  });
  app.get('/v1/organizations/:organization/watch', {
    config: { action: 'read-organization' },
    schema: {
      tags: ['journal'],
      summary: "Stream an organization's new journal entries as server-sent events",
      description:
        'Each event is `event: journal`, `id: <revision>`, `data: <entry as JSON>`. Starts after ' +
        '`after` (default 0: the whole journal), or after the `Last-Event-ID` header on reconnect. ' +
        'The stream ends when its credential does (revoked, expired, its project deleted), ' +
        `checked every ${streamRecheckIntervalMs / 1000} s and at a token's expiry. One principal may ` +
        `hold ${watchersPerPrincipalMax} streams in a process (503 beyond).`,
      params: OrganizationParams,
      querystring: WatchQuery,
      response: {
        200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...problemResponses(400, 401, 404, 503),
      },
    },
    handler: async (request, reply) => {
      const organization = request.params.organization;
      const after = resumeRevision(request, request.query.after);
      await ledger.getOrganization(organization);
      if (closing) {
        // And the connection goes with the answer, or the close would wait on it idling.
        reply.header('connection', 'close');
        throw new AllotError('service-unavailable', 'the server is shutting down; reconnect to another');
      }
      const principal = request.principal.id;
      const own = watchersByPrincipal.get(principal) ?? 0;
      if (own >= watchersPerPrincipalMax) {
        throw new AllotError('service-unavailable', `at most ${watchersPerPrincipalMax} streams per principal; close one or retry later`);
      }
      if (watchers >= watchersMax) {
        throw new AllotError('service-unavailable', `at most ${watchersMax} streams at a time; retry later`);
      }
      watchers += 1;
      watchersByPrincipal.set(principal, own + 1);
      try {
        await stream(ledger, feed, request, reply, organization, after, stopAll);
      } finally {
        watchers -= 1;
        const left = (watchersByPrincipal.get(principal) ?? 1) - 1;
        if (left === 0) watchersByPrincipal.delete(principal);
        else watchersByPrincipal.set(principal, left);
      }
    },
  });
};

function resumeRevision(request: FastifyRequest, after: string | undefined): number {
  const lastEventId = request.headers['last-event-id'];
  const value = typeof lastEventId === 'string' ? lastEventId : (after ?? '0');
  if (!/^[0-9]{1,15}$/.test(value)) throw invalid('Last-Event-ID', 'must be a journal revision');
  return Number(value);
}

/**
 * Writes entries as they commit until the client goes away, the server closes, or the
 * credential that opened the stream no longer stands.
 */
async function stream(
  ledger: Ledger,
  feed: JournalFeed,
  request: FastifyRequest,
  reply: FastifyReply,
  organization: string,
  after: number,
  stopAll: Set<() => void>,
): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  // Send the headers now: a client learns the stream is open before the first entry.
  raw.flushHeaders();
  const stopped = new AbortController();
  const stop = () => stopped.abort();
  // At shutdown, or when the credential ends, the connection goes too: it would otherwise idle
  // in keep-alive, and the server's close would wait for its timeout.
  let dropConnection = false;
  const shutdown = () => {
    dropConnection = true;
    stop();
  };
  request.raw.on('close', stop);
  stopAll.add(shutdown);
  // The client may have gone while the organization was looked up: 'close' has fired already.
  if (request.raw.destroyed || raw.destroyed) stop();
  const { authentication } = request;
  const unfollow = await feed.follow(organization).catch((error: unknown) => {
    stop();
    request.log.error({ err: error }, 'watch stream could not follow');
    return () => undefined;
  });
  let revision = after;
  let lastWriteMs = ledger.clock.nowMs();
  let recheckAtMs = ledger.clock.nowMs() + streamRecheckIntervalMs;
  // A revocation in this process is heard at once: check before the next entry is written.
  let waiting = new AbortController();
  const stopListening = ledger.onCredentialsChanged(() => {
    recheckAtMs = 0;
    waiting.abort();
  });
  try {
    while (!stopped.signal.aborted) {
      const nowMs = ledger.clock.nowMs();
      if (authentication.expiresAtMs !== null && nowMs >= authentication.expiresAtMs) break;
      if (nowMs >= recheckAtMs) {
        if (!(await authentication.stillValid())) break;
        recheckAtMs = nowMs + streamRecheckIntervalMs;
      }
      const entries = await feed.read(organization, revision);
      // Credentials changed while reading: ask again before writing what was read.
      if (recheckAtMs === 0) continue;
      for (const entry of entries) {
        raw.write(`event: journal\nid: ${entry.revision}\ndata: ${JSON.stringify(entry)}\n\n`);
        revision = entry.revision;
        lastWriteMs = ledger.clock.nowMs();
      }
      if (entries.length === journalPageSizeMax) continue;
      if (ledger.clock.nowMs() - lastWriteMs >= heartbeatMs) {
        raw.write(': heartbeat\n\n');
        lastWriteMs = ledger.clock.nowMs();
      }
      const untilMs = Math.min(
        lastWriteMs + heartbeatMs,
        recheckAtMs,
        authentication.expiresAtMs ?? Number.POSITIVE_INFINITY,
      );
      waiting = new AbortController();
      const waited = AbortSignal.any([stopped.signal, waiting.signal]);
      if (recheckAtMs > 0) await feed.wait(organization, revision, untilMs - ledger.clock.nowMs(), waited);
    }
    // The credential ended (not the client, not the server): say so, then close.
    if (!stopped.signal.aborted) {
      dropConnection = true;
      raw.write('event: end\ndata: {"reason":"the credential that opened this stream no longer stands"}\n\n');
    }
  } catch (error) {
    request.log.error({ err: error }, 'watch stream failed');
  } finally {
    stopListening();
    unfollow();
    stopAll.delete(shutdown);
    raw.end(() => {
      if (dropConnection) request.raw.socket?.destroy();
    });
  }
}
