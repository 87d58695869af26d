/**
 * The journal of an organization: pages of entries after a revision, and a live stream of
 * new ones as server-sent events. The stream resumes from `after` or, on reconnect, from the
 * `Last-Event-ID` the client sends (each event's id is its revision), so a client that
 * reconnects gets every entry exactly once.
 */
import type { FastifyRequest } from 'fastify';
import { streamRecheckIntervalMs, watchersPerPrincipalMaxDefault } from '../../domain/constants.js';
import { invalid } from '../../domain/errors.js';
import { endpoint, read } from '../route.js';
import { Journal, JournalQuery, OrganizationParams, problemResponses, WatchQuery } from '../../schemas/index.js';

export const journal = {
  read: read(
    {
      summary: "Page through an organization's journal, oldest first",
      description:
        'Every ledger change has exactly one entry, numbered by a gap-free revision per ' +
        'organization. Pass the last revision you have as `after` for the next page.',
      params: OrganizationParams,
      querystring: JournalQuery,
      response: { 200: Journal, ...problemResponses(400, 401, 404) },
    },
    async ({ params, query }, { ledger }) => {
      if (query.tail !== undefined) {
        if (query.after !== undefined || query.limit !== undefined) {
          throw invalid('tail', 'cannot be combined with after or limit');
        }
        const items = await ledger.readJournalTail(params.organization, Number(query.tail));
        return { items, lastRevision: items.at(-1)?.revision ?? 0 };
      }
      const after = Number(query.after ?? 0);
      const limit = query.limit === undefined ? undefined : Number(query.limit);
      const items = await ledger.readJournal(params.organization, after, limit);
      return { items, lastRevision: items.at(-1)?.revision ?? after };
    },
  ),

  watch: endpoint({
    schema: {
      summary: "Stream an organization's new journal entries as server-sent events",
      description:
        'Each event is `event: journal`, `id: <revision>`, `data: <entry as JSON>`. Starts after ' +
        '`after` (default 0: the whole journal), or after the `Last-Event-ID` header on reconnect. ' +
        'The stream ends when its credential does (revoked, expired, its project deleted), ' +
        `checked every ${streamRecheckIntervalMs / 1000} s and at a token's expiry. One principal may ` +
        'hold a bounded number of streams in a process (`allot serve --watch-per-principal`, default ' +
        `${watchersPerPrincipalMaxDefault}; 503 beyond).`,
      params: OrganizationParams,
      querystring: WatchQuery,
      response: {
        200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...problemResponses(400, 401, 404, 503),
      },
    },
    handler: async (request, reply, { ledger, watchers }) => {
      const organization = request.params.organization;
      const after = resumeRevision(request, request.query.after);
      await ledger.getOrganization(organization);
      await watchers.watch(request, reply, organization, after);
    },
  }),
};

function resumeRevision(request: FastifyRequest, after: string | undefined): number {
  const lastEventId = request.headers['last-event-id'];
  const value = typeof lastEventId === 'string' ? lastEventId : (after ?? '0');
  if (!/^[0-9]{1,15}$/.test(value)) throw invalid('Last-Event-ID', 'must be a journal revision');
  return Number(value);
}
