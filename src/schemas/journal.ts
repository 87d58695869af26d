import { Type } from '@sinclair/typebox';
import { journalPageSizeMax } from '../domain/constants.js';
import { strict, Timestamp } from './common.js';

// The journal

/** What an entry records, one action per kind of change. */
export const journalActions = [
  'quota.set',
  'project-quota.set',
  'project.deleted',
  'limit.set',
  'limit.deleted',
  'project-regions.set',
  'allocation.created',
  'allocation.updated',
  'allocation.deleted',
  'hold.created',
  'hold.confirmed',
  'hold.released',
  'hold.expired',
  'counter.corrected',
  'quota-request.created',
  'quota-request.approved',
  'quota-request.denied',
  'quota-request.cancelled',
  'quota-request.expired',
] as const;

const UsageDelta = Type.Object({
  kind: Type.String(),
  committed: Type.Integer(),
  reserved: Type.Integer(),
  held: Type.Integer(),
});

export const JournalEntry = Type.Object({
  revision: Type.Integer(),
  organization: Type.String(),
  project: Type.Union([Type.String(), Type.Null()]),
  at: Timestamp,
  principal: Type.String(),
  action: Type.String(),
  subject: Type.Union([Type.String(), Type.Null()]),
  changes: Type.Object({}, { additionalProperties: true }),
  deltas: Type.Array(UsageDelta),
});

export const Journal = Type.Object({
  items: Type.Array(JournalEntry),
  lastRevision: Type.Integer({ description: 'The revision of the last item, or `after` when there is none' }),
});

const Revision = Type.String({ pattern: '^[0-9]{1,15}$' });

export const JournalQuery = Type.Object(
  {
    after: Type.Optional(Revision),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: `1 to ${journalPageSizeMax}` })),
    tail: Type.Optional(
      Type.String({
        pattern: '^[0-9]{1,4}$',
        description: `The newest 1 to ${journalPageSizeMax} entries instead, oldest first (not with \`after\` or \`limit\`)`,
      }),
    ),
  },
  strict,
);

export const WatchQuery = Type.Object({ after: Type.Optional(Revision) }, strict);
