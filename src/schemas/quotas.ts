import { Type } from '@sinclair/typebox';
import { kindsPerRequestMax } from '../domain/constants.js';
import { Id, KindFormat, Quantity, QuantityInput, strict } from './common.js';

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

export const Quotas = Type.Object({
  organization: Type.String(),
  generation: Type.Integer({ description: 'The quota set\'s generation: its ETag' }),
  quotas: Type.Array(QuotaUsage),
});

// Project quotas: a cap and a guarantee per kind

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
