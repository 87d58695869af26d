/**
 * JSON Schemas of the HTTP API (TypeBox), with bounds: unknown properties refused, integers
 * capped at `quantityMax`, strings bounded. They drive validation, response serialization (so
 * nothing unlisted leaks) and the OpenAPI document, and their static types are the ledger's
 * record types (`ledger/types.ts`). This file: what every resource's schemas share.
 */
import { Type, type TSchema } from '@sinclair/typebox';
import { displayNameLengthMax, idLengthMax, pageSizeMax, quantityMax } from '../domain/constants.js';
import { quantityStringPattern } from '../domain/quantity.js';
import { freeTextPattern, idPattern } from '../domain/text.js';

export const strict = { additionalProperties: false } as const;

export const Id = Type.String({ pattern: idPattern.source, maxLength: idLengthMax });
/** An allocation's or hold's id (UUIDv7). */
export const RecordId = Type.String({ pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' });
export const Quantity = Type.Integer({ minimum: 0, maximum: quantityMax });
export const QuantityInput = Type.Union([Quantity, Type.String({ pattern: quantityStringPattern })], {
  description: 'An integer from 0 to 2^53-1 in base units, or a string such as "1Ti", "500Mi", "2k".',
});
export const Timestamp = Type.String({ format: 'date-time' });
/** Free text: well-formed, no control characters (PostgreSQL refuses NUL, and none belong here). */
export const textPattern = freeTextPattern.source;
export const DisplayName = Type.String({ minLength: 1, maxLength: displayNameLengthMax, pattern: textPattern });
export const KindFormat = Type.Union([Type.Literal('decimal'), Type.Literal('binary')]);

export const CascadeQuery = Type.Object(
  { cascade: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])) },
  strict,
);

export const Flag = (description: string) => Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description }));

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

export const PageSize = Type.String({ pattern: '^[0-9]{1,4}$', description: `1 to ${pageSizeMax}` });
export const Cursor = Type.String({ minLength: 1, maxLength: 512 });

export const PageQuery = Type.Object(
  { limit: Type.Optional(PageSize), cursor: Type.Optional(Cursor) },
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
