/** The problem document every error answers with (RFC 9457). */
import { Type } from '@sinclair/typebox';
import { Quantity } from './common.js';

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
    openRequest: Type.Optional(Type.String({ description: 'quota-request-open: the id of the open request' })),
    state: Type.Optional(Type.String({ description: 'quota-request-resolved: how the request ended' })),
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
