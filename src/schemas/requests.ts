import { Type } from '@sinclair/typebox';
import { Flag, Id, Quantity, QuantityInput, strict, textPattern, Timestamp } from './common.js';

// Quota requests

export const requestStates = ['pending', 'approved', 'denied', 'cancelled', 'expired'] as const;
const RequestState = Type.Union(requestStates.map((state) => Type.Literal(state)));
const Text = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: textPattern, description });
const Field = Type.Union([Type.Literal('quota'), Type.Literal('cap'), Type.Literal('guaranteed')]);

export const QuotaRequestBody = Type.Object(
  {
    kind: Id,
    scope: Type.Union([Type.Literal('organization'), Type.Literal('project')]),
    project: Type.Optional(Id),
    field: Type.Optional(Type.Union([Type.Literal('cap'), Type.Literal('guaranteed')], { description: 'For scope project: the cap or the guarantee' })),
    preferred: QuantityInput,
    justification: Text(2000, 'Why: shown to whoever approves'),
    contact: Text(200, 'Whom to ask about it'),
  },
  strict,
);

export const QuotaRequest = Type.Object({
  id: Type.String(),
  organization: Type.String(),
  scope: Type.Union([Type.Literal('organization'), Type.Literal('project')]),
  project: Type.Union([Type.String(), Type.Null()]),
  field: Field,
  kind: Type.String(),
  preferred: Quantity,
  current: Type.Union([Quantity, Type.Null()], { description: 'The value in force when requested (null: none, unlimited)' }),
  justification: Type.String(),
  contact: Type.String(),
  state: RequestState,
  granted: Type.Union([Quantity, Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  requestedBy: Type.String(),
  requestedAt: Timestamp,
  expiresAt: Timestamp,
  decidedBy: Type.Union([Type.String(), Type.Null()], { description: 'Who approved, denied or cancelled it; "policy" when approved by policy' }),
  decidedAt: Type.Union([Timestamp, Type.Null()]),
});

export const ApproveBody = Type.Object({ granted: Type.Optional(QuantityInput) }, strict);
export const DenyBody = Type.Object({ reason: Text(2000, 'Why not: shown to the requester') }, strict);

/** `?force=true`: a cut past the safety check is asked for anyway; an approval is applied as a forced quota change. */
export const RequestForceQuery = Type.Object({ force: Flag('true: as force on a quota change (a cut past the safety check, a cap below usage)') }, strict);

export const QuotaRequestParams = Type.Object({ organization: Id, id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) }, strict);
export const QuotaRequestQuery = Type.Object(
  {
    state: Type.Optional(RequestState),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: '1 to 1000' })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
  },
  strict,
);
export const QuotaRequestWait = Type.Object(
  { wait: Type.Optional(Type.String({ pattern: '^[0-9]{1,2}s$', description: 'Answer when the request leaves pending or this time is up (at most 60s)' })) },
  strict,
);

export const RequestPolicy = Type.Object(
  {
    autoApprove: Type.Union([
      Type.Object(
        {
          maxIncrease: Type.Optional(Type.Union([Quantity, Type.Null()], { description: 'Increases up to this much are approved' })),
          maxIncreasePercent: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 1000 }), Type.Null()], { description: '…or up to this percent of the current quota' })),
          perPeriod: Type.Integer({ minimum: 1, maximum: 1000, description: 'At most this many approvals by policy per organization and period' }),
          periodSeconds: Type.Integer({ minimum: 60, maximum: 31_536_000 }),
        },
        strict,
      ),
      Type.Null(),
    ], { description: "Organization quota increases approved without a person (null: none)" }),
    decreaseMaxPercent: Type.Union([Type.Integer({ minimum: 0, maximum: 100 }), Type.Null()], {
      description: 'The safety check: a requested cut deeper than this percent of the current value needs force (null: no check)',
    }),
    expiresAfterSeconds: Type.Integer({ minimum: 60, maximum: 31_536_000, description: 'A pending request expires after this long' }),
  },
  strict,
);
export const RequestPolicyBody = Type.Partial(RequestPolicy, strict);
