/**
 * JSON Schemas of the HTTP API (TypeBox), with bounds: unknown properties refused, integers
 * capped at `quantityMax`, strings bounded. They drive validation, response serialization (so
 * nothing unlisted leaks) and the OpenAPI document.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import {
  descriptionLengthMax,
  displayNameLengthMax,
  holdTtlSecondsMax,
  idLengthMax,
  holdTtlSecondsMin,
  journalPageSizeMax,
  batchOperationsMax,
  kindsPerRequestMax,
  pageSizeMax,
  quantityMax,
  resourceIdLengthMax,
} from '../domain/constants.js';
import { quantityStringPattern } from '../domain/quantity.js';
import { freeTextPattern, resourceIdPattern } from '../domain/text.js';
import { idPattern } from '../ledger/validate.js';

const strict = { additionalProperties: false } as const;

export const Id = Type.String({ pattern: idPattern.source, maxLength: idLengthMax });
/** An allocation's or hold's id (UUIDv7). */
export const RecordId = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' });
export const Quantity = Type.Integer({ minimum: 0, maximum: quantityMax });
export const QuantityInput = Type.Union([Quantity, Type.String({ pattern: quantityStringPattern })], {
  description: 'An integer from 0 to 2^53-1 in base units, or a string such as "1Ti", "500Mi", "2k".',
});
const Timestamp = Type.String({ format: 'date-time' });
/** Free text: well-formed, no control characters (PostgreSQL refuses NUL, and none belong here). */
export const textPattern = freeTextPattern.source;
const DisplayName = Type.String({ minLength: 1, maxLength: displayNameLengthMax, pattern: textPattern });
const KindFormat = Type.Union([Type.Literal('decimal'), Type.Literal('binary')]);

// Resource kinds

export const KindBody = Type.Object(
  {
    displayName: DisplayName,
    description: Type.Optional(Type.String({ maxLength: descriptionLengthMax, pattern: textPattern })),
    default: Type.Optional(Type.Union([QuantityInput, Type.Null()], {
      description: 'A quantity, or null for unlimited: the quota of organizations without their own.',
    })),
    format: Type.Optional(KindFormat),
  },
  strict,
);

export const Kind = Type.Object({
  name: Type.String(),
  displayName: Type.String(),
  description: Type.String(),
  default: Type.Union([Quantity, Type.Null()]),
  format: KindFormat,
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

// Organizations and projects

export const TenantBody = Type.Object({ displayName: Type.Optional(DisplayName) }, strict);

export const Organization = Type.Object({
  id: Type.String(),
  displayName: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

export const Project = Type.Object({
  organization: Type.String(),
  id: Type.String(),
  displayName: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

// Quotas

export const QuotaBody = Type.Object(
  {
    quotas: Type.Array(
      Type.Object(
        {
          kind: Id,
          quantity: Type.Union([QuantityInput, Type.Null()], {
            description: "A quantity, or null to remove the organization's own quota (the kind's default applies).",
          }),
        },
        strict,
      ),
      { minItems: 1, maxItems: kindsPerRequestMax },
    ),
  },
  strict,
);

export const QuotaUsage = Type.Object({
  kind: Type.String(),
  displayName: Type.String(),
  description: Type.String(),
  default: Type.Union([Quantity, Type.Null()]),
  format: KindFormat,
  quantity: Type.Union([Quantity, Type.Null()], { description: 'null: unlimited' }),
  source: Type.Union([Type.Literal('quota'), Type.Literal('default'), Type.Literal('unlimited')]),
  used: Quantity,
  committed: Quantity,
  reserved: Quantity,
  held: Quantity,
  generation: Type.Integer(),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
  free: Type.Union([Quantity, Type.Null()]),
  overLimit: Type.Boolean(),
  guaranteed: Type.Union([Quantity], { description: "The sum of the projects' guarantees of this kind" }),
  freeForAnyProject: Type.Union([Quantity, Type.Null()], {
    description: 'What a project with no guarantee can still take: quantity - used - unused guarantees (null: unlimited)',
  }),
});

export const OrganizationWithQuotas = Type.Object({
  ...Organization.properties,
  quotas: Type.Optional(Type.Array(QuotaUsage, { description: 'With `include=quotas`' })),
});

export const Quotas = Type.Object({
  organization: Type.String(),
  generation: Type.Integer({ description: 'The quota set\'s generation: its ETag' }),
  quotas: Type.Array(QuotaUsage),
});

// Project envelopes

export const ProjectQuotaBody = Type.Object(
  {
    quotas: Type.Array(
      Type.Object(
        {
          kind: Id,
          cap: Type.Optional(
            Type.Union([QuantityInput, Type.Null()], { description: 'The most the project may use; absent or null: no cap' }),
          ),
          guaranteed: Type.Optional(
            Type.Union([QuantityInput, Type.Null()], {
              description: "Carved out of the organization's quota for this project alone; absent or null: none",
            }),
          ),
        },
        strict,
      ),
      { minItems: 1, maxItems: kindsPerRequestMax },
    ),
  },
  strict,
);

export const ProjectQuotaUsage = Type.Object({
  kind: Type.String(),
  displayName: Type.String(),
  format: KindFormat,
  cap: Type.Union([Quantity, Type.Null()], { description: 'null: no cap' }),
  guaranteed: Quantity,
  used: Quantity,
  committed: Quantity,
  reserved: Quantity,
  held: Quantity,
  available: Type.Union([Quantity, Type.Null()], {
    description: "What the project can take now (cap, organization and other projects' guarantees); null: unlimited",
  }),
  overCap: Type.Boolean(),
  updatedBy: Type.Union([Type.String(), Type.Null()]),
});

export const ProjectQuotas = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  generation: Type.Integer({ description: "The project's cap-and-guarantee set's generation: its ETag" }),
  quotas: Type.Array(ProjectQuotaUsage),
});

// Limits

export const LimitParams = Type.Object({ organization: Id, project: Id, service: Id, resourceType: Id }, strict);
export const LimitRegionParams = Type.Object(
  { organization: Id, project: Id, service: Id, resourceType: Id, region: Id },
  strict,
);

export const LimitBody = Type.Object(
  {
    regions: Type.Array(Type.Object({ region: Id, limit: Type.Optional(QuantityInput) }, strict), {
      minItems: 1,
      maxItems: kindsPerRequestMax,
      description:
        'The configured limit per region (regions not listed lose their limit); with `global`, the regions only, without limits',
    }),
    global: Type.Optional(
      Type.Union([QuantityInput, Type.Null()], {
        description:
          'A bound across the listed regions: the controller gives each region a share, never adding up to more (escrow)',
      }),
    ),
  },
  strict,
);

export const LimitUsageBody = Type.Object({ usage: Quantity }, strict);

export const ProjectLimitRegion = Type.Object({
  region: Type.String(),
  hostStatus: Type.Union([Type.Literal('ok'), Type.Literal('stale'), Type.Literal('unknown'), Type.Literal('none')], {
    description:
      "How the controller last fared with the region's host of this service: stale means the usage may be old; none: no host registered",
  }),
  configuredLimit: Quantity,
  activeLimit: Type.Union([Quantity], { description: 'max(configuredLimit, usage): what the region enforces' }),
  usage: Quantity,
  gap: Type.Union([Quantity], { description: 'activeLimit - configuredLimit' }),
  usageReportedAt: Type.Union([Type.String(), Type.Null()]),
  generation: Type.Integer(),
  updatedBy: Type.String(),
  updatedAt: Type.String(),
});

export const ProjectLimit = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  service: Type.String(),
  resourceType: Type.String(),
  global: Type.Union([Quantity, Type.Null()], { description: 'The bound across regions (null: none)' }),
  regions: Type.Array(ProjectLimitRegion),
});

export const CascadeQuery = Type.Object(
  { cascade: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
  strict,
);

const Flag = (description: string) => Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description }));

/**
 * `?dryRun=true` on a decision: decided and answered as the real request would be now, with
 * `Allot-Dry-Run: true`, and undone: nothing written or journaled, no idempotency key stored.
 */
const dryRun = Flag(
  'true: decide and answer exactly as now, then undo (nothing written or journaled; an Idempotency-Key is checked and looked up but not stored; header Allot-Dry-Run: true)',
);

export const DryRunQuery = Type.Object({ dryRun }, strict);

export const ForceQuery = Type.Object(
  { force: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])), dryRun },
  strict,
);

// Batches

const BatchOperation = Type.Object(
  {
    op: Type.Union(
      ['allocation.create', 'allocation.replace', 'allocation.delete', 'hold.create', 'hold.confirm', 'hold.release'].map((name) =>
        Type.Literal(name),
      ),
      { description: 'What to do, named like its route' },
    ),
    project: Id,
    id: Type.Optional(Type.Unsafe<string>({ ...RecordId, description: 'The allocation or hold (all but the creates)' })),
    ifMatch: Type.Optional(Type.String({ maxLength: 32, description: 'As the If-Match header of the route: an ETag, or *' })),
    body: Type.Optional(Type.Object({}, { additionalProperties: true, description: "The route's body (creates, replace; a confirm's is optional)" })),
  },
  strict,
);

export const BatchBody = Type.Object(
  {
    mode: Type.Union([Type.Literal('independent'), Type.Literal('atomic')], {
      description: 'independent: each operation on its own; atomic: all or none',
    }),
    operations: Type.Array(BatchOperation, { minItems: 1, description: `At most ${batchOperationsMax} (413 beyond)` }),
  },
  strict,
);

const BatchResult = Type.Object({
  status: Type.Union([Type.Integer(), Type.Null()], { description: "The operation's status as its route would answer it; null: not applied (atomic)" }),
  etag: Type.Optional(Type.String()),
  location: Type.Optional(Type.String()),
  body: Type.Optional(Type.Unknown({ description: "The route's answer: the allocation or hold, or a problem document" })),
});

export const BatchAnswer = Type.Object({
  mode: Type.Union([Type.Literal('independent'), Type.Literal('atomic')]),
  results: Type.Array(BatchResult),
});

// Allocations

const ResourceRef = Type.Object(
  {
    kind: Id,
    id: Type.String({ pattern: resourceIdPattern.source, minLength: 1, maxLength: resourceIdLengthMax }),
  },
  strict,
);

const LineInputs = Type.Array(
  Type.Object(
    {
      kind: Id,
      committed: Type.Optional(QuantityInput),
      reserved: Type.Optional(QuantityInput),
    },
    strict,
  ),
  { minItems: 1, maxItems: kindsPerRequestMax },
);

export const AllocationBody = Type.Object({ resource: ResourceRef, allocations: LineInputs }, strict);

export const HoldBody = Type.Object(
  {
    resource: ResourceRef,
    allocations: LineInputs,
    ttlSeconds: Type.Integer({ minimum: holdTtlSecondsMin, maximum: holdTtlSecondsMax }),
  },
  strict,
);

export const ConfirmBody = Type.Object(
  { allocations: Type.Optional(Type.Unsafe<Static<typeof LineInputs>>({ ...LineInputs, description: 'What to confirm; all that is held when absent' })) },
  strict,
);

const Line = Type.Object({ kind: Type.String(), committed: Quantity, reserved: Quantity });

const allocationFields = {
  id: Type.String(),
  organization: Type.String(),
  project: Type.String(),
  resource: Type.Object({ kind: Type.String(), id: Type.String() }),
  allocations: Type.Array(Line),
  generation: Type.Integer({ description: 'Bumped by every change: the ETag' }),
  createdBy: Type.String(),
  updatedBy: Type.String(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
};

export const Allocation = Type.Object(allocationFields);

export const Hold = Type.Object({
  ...allocationFields,
  status: Type.Union([
    Type.Literal('pending'),
    Type.Literal('confirmed'),
    Type.Literal('released'),
    Type.Literal('expired'),
  ]),
  expiresAt: Timestamp,
  resolvedAt: Type.Union([Timestamp, Type.Null()]),
});

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

const idempotencyKeyHeader = Type.Optional(
  Type.String({ description: 'Retries with the same key and request get the first response' }),
);

/** Headers of creating routes, listed for the OpenAPI document; others pass. */
export const CreateHeaders = Type.Object(
  { 'idempotency-key': idempotencyKeyHeader },
  { additionalProperties: true },
);

/** Headers of routes that change an existing resource; others pass. */
export const MutationHeaders = Type.Object(
  {
    'idempotency-key': idempotencyKeyHeader,
    'if-match': Type.Optional(
      Type.String({ description: 'An ETag from a read: refuse with 412 if the target changed since' }),
    ),
  },
  { additionalProperties: true },
);

const Limit = Type.String({ pattern: '^[0-9]{1,4}$', description: `1 to ${pageSizeMax}` });
const Cursor = Type.String({ minLength: 1, maxLength: 512 });

export const PageQuery = Type.Object(
  { limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) },
  strict,
);

export const AllocationQuery = Type.Object(
  {
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
    resourceKind: Type.Optional(Id),
    resourceId: Type.Optional(Type.String({ pattern: resourceIdPattern.source, minLength: 1, maxLength: resourceIdLengthMax })),
  },
  strict,
);

export const OrganizationAllocationQuery = Type.Object(
  { ...AllocationQuery.properties, project: Type.Optional(Id) },
  strict,
);

export const OrganizationListQuery = Type.Object(
  {
    limit: Type.Optional(Limit),
    cursor: Type.Optional(Cursor),
    prefix: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,63}$', description: 'Only organizations whose id starts with this' })),
    include: Type.Optional(
      Type.Literal('quotas', { description: "quotas: each organization's quotas and usage too (then `limit` is at most 100)" }),
    ),
  },
  strict,
);

export const OrganizationLimitQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$', description: '1 to 100 projects' })),
    cursor: Type.Optional(Cursor),
    project: Type.Optional(Id),
  },
  strict,
);

export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Union([Type.String(), Type.Null()]) });

export const listOf = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item) });

// Paths

export const OrganizationParams = Type.Object({ organization: Id }, strict);
export const ProjectParams = Type.Object({ organization: Id, project: Id }, strict);
/** Allocation and hold ids are UUIDs (v7). */

export const SubResourceParams = Type.Object(
  { organization: Id, project: Id, id: RecordId },
  strict,
);
export const AllocationParams = SubResourceParams;

export const KindParams = Type.Object({ kind: Id }, strict);

// Problems (RFC 9457)

export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    violations: Type.Optional(
      Type.Array(
        Type.Object({
          kind: Type.String(),
          scope: Type.Union([Type.Literal('project'), Type.Literal('organization'), Type.Literal('guarantees')], {
            description: "The level that refused: the project's cap, the organization's quota, or the other projects' guarantees",
          }),
          requested: Quantity,
          used: Quantity,
          limit: Quantity,
        }),
      ),
    ),
    existingAllocationId: Type.Optional(Type.String()),
    resolution: Type.Optional(Type.String()),
    currentGeneration: Type.Optional(Type.Integer()),
    belowUsage: Type.Optional(
      Type.Array(Type.Object({ kind: Type.String(), quantity: Quantity, used: Quantity })),
    ),
    overGuaranteed: Type.Optional(
      Type.Array(
        Type.Object({
          kind: Type.String(),
          organization: Type.Optional(Type.String()),
          guaranteed: Quantity,
          quantity: Quantity,
        }),
      ),
    ),
    unavailable: Type.Optional(
      Type.Array(Type.Object({ kind: Type.String(), used: Quantity, keptBack: Quantity, quantity: Quantity })),
    ),
    live: Type.Optional(Type.Object({ allocations: Type.Integer(), holds: Type.Integer() })),
    errors: Type.Optional(
      Type.Array(Type.Object({ field: Type.String(), message: Type.String() })),
    ),
    failedOperation: Type.Optional(Type.Integer({ description: 'An atomic batch: the index of the operation refused' })),
    results: Type.Optional(
      Type.Array(
        Type.Object({
          status: Type.Union([Type.Integer(), Type.Null()], { description: 'null: not applied' }),
          body: Type.Optional(Type.Unknown()),
        }),
        { description: "An atomic batch: every operation's result" },
      ),
    ),
  },
  { $id: 'Problem', description: 'application/problem+json' },
);

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, Type.Ref('Problem')]));
