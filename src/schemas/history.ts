import { Type } from '@sinclair/typebox';
import { Id, Quantity, strict } from './common.js';

export const HistoryPoint = Type.Object({
  at: Type.String({ description: 'Start of the step' }),
  used: Type.Union([Quantity], { description: 'The highest usage sampled in the step' }),
  quantity: Type.Union([Quantity, Type.Null()], { description: 'The limit in force then (null: unlimited)' }),
});
export const HistorySeries = Type.Object({
  organization: Type.String(),
  series: Type.String({ description: 'quota:<kind>, or limit:<project>/<service>/<type>/<region>' }),
  from: Type.String(),
  to: Type.String(),
  stepSeconds: Type.Integer(),
  points: Type.Array(HistoryPoint),
});
export const range = {
  from: Type.Optional(Type.String({ maxLength: 64, description: 'ISO 8601; default: 24 hours before `to`' })),
  to: Type.Optional(Type.String({ maxLength: 64, description: 'ISO 8601; default: now' })),
  step: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: 'Seconds per point (each point is the step\'s highest usage)' })),
};

export const QuotaHistoryQuery = Type.Object({ kind: Id, ...range }, strict);
export const LimitHistoryQuery = Type.Object({ region: Type.Optional(Id), ...range }, strict);
