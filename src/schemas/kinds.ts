import { Type } from '@sinclair/typebox';
import { descriptionLengthMax } from '../domain/constants.js';
import { DisplayName, KindFormat, Quantity, QuantityInput, strict, textPattern, Timestamp } from './common.js';

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
