/**
 * The watch streams of this process: one follower per watched organization, shared by its
 * streams (see feed.ts), with bounds on streams in all and per principal. Open streams end as
 * the server starts closing, so `app.close()` (SIGTERM) does not wait on them: 'onClose' runs
 * only after every connection has ended, which a stream never does. A watch still being
 * authenticated or looked up when closing starts is refused rather than left to stream forever.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { journalPageSizeMax, streamRecheckIntervalMs, watchersMax } from '../domain/constants.js';
import { AllotError } from '../domain/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { JournalFeed } from './feed.js';

const heartbeatMs = 15_000;

export class Watchers {
  private readonly feed: JournalFeed;
  private count = 0;
  private readonly byPrincipal = new Map<string, number>();
  private readonly stopAll = new Set<() => void>();
  private closing = false;

  constructor(
    private readonly ledger: Ledger,
    /** Streams one principal may hold open in this process. */
    readonly perPrincipalMax: number,
  ) {
    this.feed = new JournalFeed(ledger);
  }

  /** Streams `organization`'s entries after `after` until the client, the server or the credential ends. */
  async watch(request: FastifyRequest, reply: FastifyReply, organization: string, after: number): Promise<void> {
    if (this.closing) {
      // And the connection goes with the answer, or the close would wait on it idling.
      reply.header('connection', 'close');
      throw new AllotError('service-unavailable', 'the server is shutting down; reconnect to another');
    }
    const principal = request.principal.id;
    const own = this.byPrincipal.get(principal) ?? 0;
    if (own >= this.perPrincipalMax) {
      throw new AllotError('service-unavailable', `at most ${this.perPrincipalMax} streams per principal; close one or retry later`);
    }
    if (this.count >= watchersMax) {
      throw new AllotError('service-unavailable', `at most ${watchersMax} streams at a time; retry later`);
    }
    this.count += 1;
    this.byPrincipal.set(principal, own + 1);
    try {
      await stream(this.ledger, this.feed, request, reply, organization, after, this.stopAll);
    } finally {
      this.count -= 1;
      const left = (this.byPrincipal.get(principal) ?? 1) - 1;
      if (left === 0) this.byPrincipal.delete(principal);
      else this.byPrincipal.set(principal, left);
    }
  }

  /** The server starts closing: end every stream, refuse new ones. */
  stop(): void {
    this.closing = true;
    for (const stop of this.stopAll) stop();
  }

  /** The server has closed: stop following. */
  close(): void {
    this.feed.close();
  }
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
