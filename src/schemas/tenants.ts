import { Type } from '@sinclair/typebox';
import { Cursor, DisplayName, PageSize, strict, Timestamp } from './common.js';
import { QuotaUsage } from './quotas.js';

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

export const OrganizationListQuery = Type.Object(
  {
    limit: Type.Optional(PageSize),
    cursor: Type.Optional(Cursor),
    prefix: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,63}$', description: 'Only organizations whose id starts with this' })),
    include: Type.Optional(
      Type.Literal('quotas', { description: "quotas: each organization's quotas and usage too (then `limit` is at most 100)" }),
    ),
  },
  strict,
);


export const OrganizationWithQuotas = Type.Object({
  ...Organization.properties,
  quotas: Type.Optional(Type.Array(QuotaUsage, { description: 'With `include=quotas`' })),
});
