import { Type, type Static } from '@sinclair/typebox';
import { holdTtlSecondsMax, holdTtlSecondsMin, kindsPerRequestMax, resourceIdLengthMax } from '../domain/constants.js';
import { resourceIdPattern } from '../domain/text.js';
import { Cursor, Id, PageSize, Quantity, QuantityInput, strict, Timestamp } from './common.js';

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

export const AllocationQuery = Type.Object(
  {
    limit: Type.Optional(PageSize),
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
