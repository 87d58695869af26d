import { Type, type TSchema } from '@sinclair/typebox';
import { Id, strict, Timestamp } from './common.js';
import { JournalEntry, journalActions } from './journal.js';

const Fraction = Type.Number({ exclusiveMinimum: 0, maximum: 10 });
const Level = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const ThresholdSpec = Type.Object(
  {
    kind: Id,
    scope: Type.Union([Type.Literal('organization'), Type.Literal('project')]),
    project: Type.Optional(Id),
    at: Type.Optional(Type.Array(Fraction, { minItems: 1, maxItems: 10, description: 'Fractions of the quota (organization) or cap (project)' })),
    quantities: Type.Optional(Type.Array(Level, { minItems: 1, maxItems: 10, description: 'Absolute quantities, in base units' })),
    hysteresis: Type.Optional(
      Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'Cleared once usage falls this fraction of the limit below the level (default 0.05)' }),
    ),
  },
  strict,
);

export const JournalFilter = Type.Object(
  {
    actions: Type.Optional(Type.Array(Type.Union(journalActions.map((action) => Type.Literal(action))), { maxItems: 20 })),
    projects: Type.Optional(Type.Array(Id, { maxItems: 100 })),
    kinds: Type.Optional(Type.Array(Id, { maxItems: 100 })),
  },
  { ...strict, description: 'Journal entries to send; each list omitted: all. Entries are matched by action, project, and the kinds their usage moved' },
);

export const DenialDigest = Type.Object(
  { intervalSeconds: Type.Integer({ minimum: 60, maximum: 86_400, multipleOf: 60, description: 'Whole minutes' }) },
  { ...strict, description: 'Refused decisions per kind and scope, sent at most once per interval' },
);

export const SubscriptionBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'Where events are POSTed: http or https, no credentials' }),
    journal: Type.Optional(Type.Union([JournalFilter, Type.Null()])),
    thresholds: Type.Optional(Type.Array(ThresholdSpec, { maxItems: 50 })),
    denials: Type.Optional(Type.Union([DenialDigest, Type.Null()])),
  },
  strict,
);

export const Delivery = Type.Object({
  organization: Type.String(),
  revision: Type.Integer({ description: 'The last journal revision whose events were delivered' }),
  state: Type.Union([Type.Literal('active'), Type.Literal('retrying'), Type.Literal('failing')]),
  attempts: Type.Integer({ description: 'Failed attempts in a row' }),
  nextAttemptAt: Type.Union([Timestamp, Type.Null()]),
  failingSince: Type.Union([Timestamp, Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  deliveredAt: Type.Union([Timestamp, Type.Null()]),
});

const subscriptionFields = {
  id: Type.String(),
  organization: Type.Union([Type.String(), Type.Null()], { description: 'null: every organization' }),
  url: Type.String(),
  journal: Type.Union([JournalFilter, Type.Null()]),
  thresholds: Type.Array(ThresholdSpec),
  denials: Type.Union([DenialDigest, Type.Null()]),
  state: Type.Union([Type.Literal('active'), Type.Literal('failing')], { description: 'failing: deliveries stopped after the retries ran out; resume to go on' }),
  deliveries: Type.Array(Delivery),
  createdBy: Type.String(),
  createdAt: Timestamp,
};

export const Subscription = Type.Object(subscriptionFields);
export const NewSubscription = Type.Object({
  ...subscriptionFields,
  secret: Type.String({ description: 'The signing secret (Standard Webhooks, whsec_…): shown this once' }),
});

export const SubscriptionParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }, strict);
export const OrganizationSubscriptionParams = Type.Object({ organization: Id, id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }, strict);

// What allot sends: the body of each webhook (Standard Webhooks: type, timestamp, data).

const ThresholdEventData = Type.Object({
  organization: Type.String(),
  scope: Type.Union([Type.Literal('organization'), Type.Literal('project')]),
  project: Type.Union([Type.String(), Type.Null()]),
  kind: Type.String(),
  at: Type.Optional(Type.Number({ description: 'The level as a fraction of the limit (levels given with `at`)' })),
  quantity: Type.Optional(Type.Integer({ description: 'The level as a quantity (levels given with `quantities`)' })),
  level: Type.Number({ description: 'The level in base units' }),
  usage: Type.Integer({ description: 'Committed + reserved + held after the change' }),
  limit: Type.Union([Type.Integer(), Type.Null()], { description: 'The quota (or cap) in force; null: none' }),
  revision: Type.Integer({ description: 'The journal revision of the change' }),
});

const DenialDigestData = Type.Object({
  organization: Type.String(),
  from: Timestamp,
  to: Timestamp,
  denials: Type.Array(
    Type.Object({
      kind: Type.String(),
      scope: Type.Union([Type.Literal('organization'), Type.Literal('project'), Type.Literal('guarantees')]),
      project: Type.Union([Type.String(), Type.Null()]),
      count: Type.Integer({ minimum: 1 }),
    }),
  ),
});

const eventOf = (type: string, data: TSchema) =>
  Type.Object({ type: Type.Literal(type), timestamp: Timestamp, data }, { additionalProperties: false });

/** Each event type allot sends, with its body. */
export const webhookEvents = {
  'journal.entry': eventOf('journal.entry', JournalEntry),
  'threshold.crossed': eventOf('threshold.crossed', ThresholdEventData),
  'threshold.cleared': eventOf('threshold.cleared', ThresholdEventData),
  'denials.digest': eventOf('denials.digest', DenialDigestData),
};
