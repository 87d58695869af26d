import { Type } from '@sinclair/typebox';
import { batchOperationsMax } from '../domain/constants.js';
import { Id, RecordId, strict } from './common.js';

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
