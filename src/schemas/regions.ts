import { Type } from '@sinclair/typebox';
import { Id, strict } from './common.js';

export const RegionParams = Type.Object({ region: Id }, strict);
export const HostParams = Type.Object({ region: Id, service: Id }, strict);

export const RegionHost = Type.Object({
  region: Type.String(),
  service: Type.String(),
  endpoint: Type.String(),
  status: Type.Union([Type.Literal('ok'), Type.Literal('stale'), Type.Literal('unknown')], {
    description: 'ok: the controller reached it lately; stale: failing or not reached for 30 s; unknown: never tried',
  }),
  lastOkAt: Type.Union([Type.String(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
  lastErrorAt: Type.Union([Type.String(), Type.Null()]),
});
export const Region = Type.Object({
  name: Type.String(),
  displayName: Type.String(),
  hosts: Type.Array(RegionHost),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export const HostBody = Type.Object(
  {
    endpoint: Type.String({ maxLength: 2048, description: "Base URL of the host service's limits admin routes (…/admin/… below it)" }),
    token: Type.String({ minLength: 1, maxLength: 4096, description: 'The bearer token those routes accept; never shown again' }),
  },
  strict,
);
export const ProjectRegions = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  primary: Type.Union([Type.String(), Type.Null()]),
  enabled: Type.Array(Type.String()),
});
export const ProjectRegionsBody = Type.Object(
  { primary: Id, enabled: Type.Array(Id, { minItems: 1, maxItems: 64 }) },
  strict,
);
