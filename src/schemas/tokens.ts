import { Type } from '@sinclair/typebox';
import { roles } from '../domain/access.js';
import { Id, strict } from './common.js';

export const Role = Type.Union(roles.map((role) => Type.Literal(role)));

export const TokenBody = Type.Object(
  {
    role: Role,
    organization: Type.Optional(Type.Union([Id, Type.Null()])),
    project: Type.Optional(Type.Union([Id, Type.Null()])),
    expiresAt: Type.Optional(Type.Union([Type.String({ format: 'date-time', maxLength: 64 }), Type.Null()])),
  },
  { additionalProperties: false },
);

const tokenFields = {
  id: Type.String(),
  role: Role,
  organization: Type.Union([Type.String(), Type.Null()]),
  project: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  createdBy: Type.String(),
  createdAt: Type.String(),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
};

export const Token = Type.Object(tokenFields);
export const NewToken = Type.Object({
  ...tokenFields,
  token: Type.String({ description: 'The token itself: shown this once, never stored' }),
});

export const WhoAmI = Type.Object({
  principal: Type.String({ description: 'What the journal records for this caller' }),
  role: Role,
  organization: Type.Union([Type.String(), Type.Null()]),
  project: Type.Union([Type.String(), Type.Null()]),
});

export const TokenParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }, strict);
